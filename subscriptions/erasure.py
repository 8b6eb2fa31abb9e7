"""Erasing a reader at their request (GDPR Art. 17; `manage.py erase_reader EMAIL`, the
subscriber's admin page).

What goes, in one transaction:
* the subscriber with the address, with their subscriptions and history, and the
  offline reader's row the address joined from (subscriptions/readerdata.py says which
  rows are the reader's); a join code someone typed with the address but never
  confirmed only forgets the address;
* the contact messages sent from the address and its mailbox's cooldowns;
* every suppression entry of the address, replaced by one that keeps only its keyed
  hash (reason `erased`): the address is never mailed again, a staff import skips it,
  and its owner may subscribe again through double opt-in, whose confirmation lifts
  that entry (services.erasure_lift);
* what other apps hold, through `reader_erasing` (delivery: events deleted into
  per-issue tallies, delivery rows kept under a placeholder address so that each
  issue's counts stay as they were, the outbox's messages to the address);
* the admin log's entries about those rows or naming the address.
The admin log then records that an erasure happened, by whom and what it removed,
without the address (an erasure from the command line is logged, having no user).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal

from subscriptions.hashing import address_hash, key_id
from subscriptions.mailbox import mailbox
from subscriptions.models import (
    ContactMessage,
    EmailCooldown,
    Subscriber,
    Subscription,
    SubscriptionRequest,
    Suppression,
)
from subscriptions.readerdata import Reader, reader_data, reader_find

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

log = logging.getLogger(__name__)

# Sent with `reader=` inside the erasure's transaction, before the subscribers are
# deleted; each receiver erases what its app holds about the reader and returns
# {what: how many}.
reader_erasing = Signal()

ERASED_REPR = "An erased reader"


@dataclass
class Erasure:
    removed: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        done = [f"{what}: {n}" for what, n in self.removed.items() if n]
        return "Erased at the reader's request: " + (", ".join(done) or "nothing else") + "."


def reader_erase(*, email: str, by: AbstractBaseUser | None = None) -> Erasure | None:
    """Erase everything held about the address and keep it suppressed by its hash alone.
    None, and nothing changed, when nothing is held about it."""
    if reader_data(email=email) is None:
        return None
    erasure = Erasure()
    removed = erasure.removed
    with transaction.atomic():
        reader = reader_find(email=email)
        subscriptions = Subscription.objects.filter(subscriber_id__in=reader.subscriber_ids)
        removed["subscribers"] = len(reader.subscriber_ids)
        removed["subscriptions"] = subscriptions.count()
        for _, counts in reader_erasing.send(sender=Reader, reader=reader):
            removed.update(counts or {})
        _log_entries_erase(reader)
        Subscriber.objects.filter(pk__in=reader.subscriber_ids).delete()
        removed["join requests"] = Subscriber.objects.filter(pk__in=reader.join_request_ids).update(
            join_email=None, join_requested_at=None
        )
        removed["contact messages"], _ = ContactMessage.objects.filter(email=reader.email).delete()
        EmailCooldown.objects.filter(mailbox=mailbox(reader.email)).delete()
        Suppression.objects.matching(reader.email).delete()
        Suppression.objects.create(
            email="",
            email_hash=address_hash(reader.email),
            key_id=key_id(),
            reason=Suppression.Reason.ERASED,
            source="erasure",
        )
        if by is not None and by.is_authenticated:
            LogEntry.objects.create(
                user_id=by.pk,
                content_type=ContentType.objects.get_for_model(Subscriber),
                object_id=None,
                object_repr=ERASED_REPR,
                action_flag=DELETION,
                change_message=erasure.summary(),
            )
    log.info("%s (by %s)", erasure.summary(), by or "the command line")
    return erasure


def _log_entries_erase(reader: Reader) -> None:
    """The admin log's entries about the reader's rows, and any naming the address."""
    subscription_ids = list(
        Subscription.objects.filter(subscriber_id__in=reader.subscriber_ids).values_list(
            "pk", flat=True
        )
    )
    objects = {
        Subscriber: list(reader.subscriber_ids),
        Subscription: subscription_ids,
        SubscriptionRequest: subscription_ids,  # the requests' admin logs them as its own
        ContactMessage: list(
            ContactMessage.objects.filter(email=reader.email).values_list("pk", flat=True)
        ),
        Suppression: list(Suppression.objects.matching(reader.email).values_list("pk", flat=True)),
    }
    about = Q(object_repr__icontains=reader.email) | Q(change_message__icontains=reader.email)
    for model, ids in objects.items():
        if ids:
            about |= Q(
                content_type=ContentType.objects.get_for_model(model, for_concrete_model=False),
                object_id__in=[str(pk) for pk in ids],
            )
    LogEntry.objects.filter(about).delete()
