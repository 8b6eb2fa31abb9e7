"""The "Subscription staff" group (SPEC section 1), and the permission that shows readers'
signed links. The group lives here because delivery can name both its permissions and
those of subscriptions."""

from __future__ import annotations

from issues.permissions import Groups

# A reader's unsubscribe, preferences and confirm links act for that reader, so pages
# that show real ones (the outbox, the URLs readers clicked) need this permission, which
# no group grants: superusers hold it, and anyone it is given to by name.
READERS_LINKS = "delivery.view_outbox"

# the bounce mailbox: each message read, what came of it, why one was kept aside (given
# by migration 0014: the model is younger than the group)
BOUNCE_LIST = [("delivery", "view_bouncemessage")]
SUBSCRIPTION_STAFF_PERMISSIONS = [
    # people and their subscriptions; "change_subscriber" is also the legacy-list import
    ("subscriptions", "view_subscriber"),
    ("subscriptions", "change_subscriber"),
    # a reader's data on request, and their erasure (GDPR Art. 15 and 17)
    ("subscriptions", "erase_subscriber"),
    ("subscriptions", "view_subscription"),
    ("subscriptions", "change_subscription"),
    ("subscriptions", "view_subscriptionevent"),
    # requests for publications that require approval
    ("subscriptions", "view_subscriptionrequest"),
    ("subscriptions", "change_subscriptionrequest"),
    # the suppression list: add an address, lift an entry with a note
    ("subscriptions", "view_suppression"),
    ("subscriptions", "add_suppression"),
    ("subscriptions", "change_suppression"),
    # questions from readers
    ("subscriptions", "view_contactmessage"),
    ("subscriptions", "change_contactmessage"),
    # each subscriber's delivery history, bounces and complaints
    ("delivery", "view_delivery"),
    ("delivery", "view_deliveryevent"),
    *BOUNCE_LIST,
]
GROUPS: Groups = {"Subscription staff": SUBSCRIPTION_STAFF_PERMISSIONS}
