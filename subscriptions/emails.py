"""The transactional messages of subscriptions: confirmation, welcome, request
decisions, preference links, contact acknowledgements and notifications, invitations of
legacy readers and join confirmations, each built by `monitor_site.emails.build_message`
from its templates."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from issues.models import Publication
from monitor_site.emails import build_message
from subscriptions.models import ContactMessage, Subscriber, Subscription
from subscriptions.tokens import (
    confirm_url,
    invitation_url,
    join_url,
    preferences_url,
    unsubscribe_url,
)


def _sender(subscriptions: Sequence[Subscription]) -> Publication | None:
    """The publication as sender when there is one; several share the default sender."""
    publications = {s.publication_id: s.publication for s in subscriptions}
    return next(iter(publications.values())) if len(publications) == 1 else None


def greeting_name(subscriber: Subscriber) -> str:
    """The name to greet a reader by: none until the address is confirmed, so that a
    stranger cannot have us mail words of their choosing to someone else."""
    return subscriber.name if subscriber.address_confirmed else ""


def confirmation_message(
    subscriber: Subscriber, subscriptions: Sequence[Subscription]
) -> EmailMultiAlternatives:
    """The link confirms the current request (its nonce), and only that one."""
    return build_message(
        "confirmation",
        to=subscriber.email,
        publication=_sender(subscriptions),
        context={
            "name": greeting_name(subscriber),
            "subscriptions": subscriptions,
            "confirm_url": confirm_url(subscriber.pk, subscriber.confirm_nonce),
        },
    )


def welcome_message(
    subscriber: Subscriber, subscriptions: Sequence[Subscription]
) -> EmailMultiAlternatives:
    return build_message(
        "welcome",
        to=subscriber.email,
        publication=_sender(subscriptions),
        context={
            "subscriber": subscriber,
            "subscriptions": [(s, unsubscribe_url(s.pk)) for s in subscriptions],
            "preferences_url": preferences_url(subscriber.pk),
        },
    )


def request_decision_message(subscription: Subscription) -> EmailMultiAlternatives:
    """Approved (the subscription is active) or rejected (it has ended)."""
    approved = subscription.status == subscription.Status.ACTIVE
    return build_message(
        "request_approved" if approved else "request_rejected",
        to=subscription.subscriber.email,
        publication=subscription.publication,
        context={
            "subscriber": subscription.subscriber,
            "subscription": subscription,
            "preferences_url": preferences_url(subscription.subscriber_id),
            "unsubscribe_url": unsubscribe_url(subscription.pk) if approved else "",
        },
    )


def preferences_link_message(subscriber: Subscriber) -> EmailMultiAlternatives:
    subscriptions = list(subscriber.subscriptions.select_related("publication"))
    return build_message(
        "preferences_link",
        to=subscriber.email,
        publication=_sender(subscriptions),
        context={
            "name": greeting_name(subscriber),
            "preferences_url": preferences_url(subscriber.pk),
        },
    )


def contact_acknowledgement_message(message: ContactMessage) -> EmailMultiAlternatives:
    """Says only that the message arrived: nothing the sender typed is echoed, so the
    form cannot be used to mail arbitrary text to a third party."""
    return build_message(
        "contact_acknowledgement",
        to=message.email,
        publication=message.publication,
        context={"message": message},
    )


def contact_notification_message(message: ContactMessage) -> EmailMultiAlternatives:
    """To the publication's contact address, else DEFAULT_FROM_EMAIL; Reply-To is the
    reader, so that staff answer with their mail client."""
    publication = message.publication
    staff = (publication.contact_email if publication else "") or settings.DEFAULT_FROM_EMAIL
    return build_message(
        "contact_notification",
        to=staff,
        publication=publication,
        reply_to_addresses=[message.email],
        context={"message": message},
    )


def invitation_message(subscription: Subscription, *, reminder: int = 0) -> EmailMultiAlternatives:
    """The publication is moving to email: one button keeps it; ignoring the message
    changes nothing. A fresh link in each reminder; one-click unsubscribe (RFC 8058)
    stops the reminders."""
    unsubscribe = unsubscribe_url(subscription.pk)
    return build_message(
        "invitation",
        to=subscription.subscriber.email,
        publication=subscription.publication,
        context={
            "subscriber": subscription.subscriber,
            "subscription": subscription,
            "reminder": reminder,
            "accept_url": invitation_url(subscription.pk),
            "unsubscribe_url": unsubscribe,
            "days": subscription.INVITATION_DAYS,
        },
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def join_confirmation_message(
    subscriber: Subscriber, subscriptions: Sequence[Subscription]
) -> EmailMultiAlternatives:
    """To the address typed with a join code. Neutral: it names no one and echoes nothing
    that was typed but the address it goes to."""
    return build_message(
        "join_confirmation",
        to=subscriber.join_email,
        publication=_sender(subscriptions),
        context={"confirm_url": join_url(subscriber.pk, subscriber.join_email)},
    )
