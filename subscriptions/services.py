"""Subscription workflows: request, confirm, approve, reject, unsubscribe, preferences,
suppression and contact messages (list imports: imports.py; legacy readers'
invitations and join codes: invitations.py, joining.py).

Each function that writes is atomic, checks the current status before it changes one
(a conditional UPDATE, so that concurrent callers change a row once), records the
change as a SubscriptionEvent, and enqueues its emails after commit."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Task
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from issues.models import Publication
from subscriptions.hashing import address_hash
from subscriptions.mailbox import mailbox
from subscriptions.models import (
    ContactMessage,
    EmailCooldown,
    Subscriber,
    Subscription,
    SubscriptionEvent,
    Suppression,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

log = logging.getLogger(__name__)

# At most one confirmation (and one preferences-link) email per mailbox in this time,
# whatever the number of requests, the variants of the address, or where they come from.
EMAIL_INTERVAL = timedelta(minutes=10)

Status = Subscription.Status
ENDED_STATUSES = (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED)

SUPPRESSION_ENDS_AS = {
    Suppression.Reason.BOUNCED: Status.BOUNCED,
    Suppression.Reason.INVALID: Status.BOUNCED,
    Suppression.Reason.BLOCKED: Status.BOUNCED,
    Suppression.Reason.COMPLAINED: Status.COMPLAINED,
    Suppression.Reason.UNSUBSCRIBED: Status.UNSUBSCRIBED,
    Suppression.Reason.MANUAL: Status.UNSUBSCRIBED,
}


def normalize_email(email: str) -> str:
    return email.strip().lower()


def is_suppressed(email: str | None, *, asking_again: bool = False) -> bool:
    """Whether nothing may be sent to this address. `asking_again`: for the confirmation
    of a request the address's owner made, which an erasure does not stop (confirming
    lifts it, see subscription_confirm); every other suppression does."""
    if not email:  # an offline reader: no address to suppress
        return False
    entries = Suppression.objects.active().matching(normalize_email(email))
    if asking_again:
        entries = entries.exclude(reason=Suppression.Reason.ERASED)
    return entries.exists()


def erasure_lift(*, email: str) -> int:
    """The owner of an erased address confirmed it again: the erasure no longer keeps
    mail from it. Returns how many entries were lifted (0 or 1)."""
    return (
        Suppression.objects.active()
        .matching(normalize_email(email))
        .filter(reason=Suppression.Reason.ERASED)
        .update(lifted_at=timezone.now(), lifted_note="The reader subscribed again and confirmed.")
    )


def _transition(
    subscription: Subscription,
    *,
    allowed: Collection[str],
    to: str,
    note: str = "",
    by: AbstractBaseUser | None = None,
    **fields: Any,
) -> bool:
    """Move one subscription to `to` if its current status is in `allowed`.

    The UPDATE is conditional on the status just read: of concurrent callers, exactly
    one changes the row and records the event; the others get False. Call inside a
    transaction."""
    current = (
        Subscription.objects.filter(pk=subscription.pk).values_list("status", flat=True).first()
    )
    if current is None or current not in allowed:
        return False
    changed = Subscription.objects.filter(pk=subscription.pk, status=current).update(
        status=to, **fields
    )
    if not changed:
        return False
    if current == Status.PENDING or to in ENDED_STATUSES:
        # confirmed or ended: links of the request before stop working
        _new_confirm_nonce(subscription.subscriber_id)
    SubscriptionEvent.objects.create(
        subscription_id=subscription.pk,
        from_status=current,
        to_status=to,
        reason=note[:300],
        by=by if by is not None and by.is_authenticated else None,
    )
    subscription.status = to
    for name, value in fields.items():
        setattr(subscription, name, value)
    return True


def _new_confirm_nonce(subscriber_id: int) -> None:
    Subscriber.objects.filter(pk=subscriber_id).update(confirm_nonce=secrets.token_urlsafe(12))


def _claim_email_slot(email: str, kind: str) -> bool:
    """True for the one caller that may send this kind of email to this mailbox now.

    In the database, so that it holds across web processes and is given back if the
    caller's transaction rolls back. A new mailbox is an INSERT, which the unique
    constraint lets succeed once; a known one a conditional UPDATE, which concurrent
    callers serialize on and only one finds free."""
    now = timezone.now()
    with transaction.atomic():
        slot, created = EmailCooldown.objects.get_or_create(
            mailbox=mailbox(email), kind=kind, defaults={"sent_at": now}
        )
        if created:
            return True
        claimed = EmailCooldown.objects.filter(
            pk=slot.pk, sent_at__lte=now - EMAIL_INTERVAL
        ).update(sent_at=now)
    return bool(claimed)


def queue_claimed(
    task: Task, calls: Sequence[tuple], give_back: Callable[[Sequence[tuple]], object]
) -> None:
    """Queue `task` once for each of `calls` (its arguments) when the transaction commits.
    Should the broker refuse one, `give_back` gets it and the calls after it, to undo the
    claims that allowed them (an email slot, an invitation), so that the next try sends
    them; the error goes on (a visitor gets a 503, monitor_site.unavailable)."""

    def queue() -> None:
        for i, args in enumerate(calls):
            try:
                task.delay(*args)
            except BrokerDown:
                give_back(calls[i:])
                raise

    transaction.on_commit(queue)


def _release_email_slot(email: str, kind: str) -> None:
    EmailCooldown.objects.filter(mailbox=mailbox(email), kind=kind).delete()


def confirmation_send(*, subscriber: Subscriber) -> bool:
    """Queue a confirmation email unless one went to this mailbox in EMAIL_INTERVAL.

    The email carries a new request nonce: the links of earlier ones stop working."""
    from subscriptions import tasks

    with transaction.atomic():
        if not _claim_email_slot(subscriber.email, EmailCooldown.Kind.CONFIRMATION):
            return False
        _new_confirm_nonce(subscriber.pk)
        queue_claimed(
            tasks.send_confirmation,
            [(subscriber.pk,)],
            lambda _: _release_email_slot(subscriber.email, EmailCooldown.Kind.CONFIRMATION),
        )
    return True


def subscription_request(
    *,
    email: str,
    name: str,
    organization: str,
    publications: Iterable[Publication],
    ip: str | None,
    form: str,
) -> Subscriber | None:
    """Ask for subscriptions to `publications`; the reader confirms by email.

    Whatever the address's state (new, pending, active, ended), the caller can answer
    the same way: nothing here is visible to the requester except the email the owner
    of the address receives. A known person's name and organization are only filled
    in while the address is unconfirmed, never overwritten (a stranger must not rename
    anyone, nor put words in a confirmed reader's emails). Ended subscriptions go back
    to `pending` and need a fresh confirmation: nobody is resubscribed silently. A
    suppressed address gets nothing, unless it was suppressed by an erasure: its owner
    may come back, through the same double opt-in as anyone. At most one confirmation
    email per mailbox per EMAIL_INTERVAL."""
    email = normalize_email(email)
    if is_suppressed(email, asking_again=True):
        return None
    with transaction.atomic():
        subscriber, created = Subscriber.objects.get_or_create(
            email=email,
            defaults={
                "name": name,
                "organization": organization,
                "source": Subscriber.Source.WEB,
                "consent_ip": ip,
                "consent_form": form[:100],
            },
        )
        if not created and not subscriber.address_confirmed:
            _fill_blanks(subscriber, name=name, organization=organization)
        for publication in publications:
            subscription, new = Subscription.objects.get_or_create(
                subscriber=subscriber, publication=publication
            )
            if new:
                SubscriptionEvent.objects.create(
                    subscription=subscription, to_status=Status.PENDING, reason=f"requested: {form}"
                )
            else:
                _transition(
                    subscription,
                    allowed=ENDED_STATUSES,
                    to=Status.PENDING,
                    note=f"requested again: {form}",
                    ended_at=None,
                    confirmed_at=None,
                    reason="",
                )
        if subscriber.subscriptions.pending().exists():
            if not created:
                Subscriber.objects.filter(pk=subscriber.pk).update(consent_form=form[:100])
            confirmation_send(subscriber=subscriber)
    return subscriber


def _fill_blanks(subscriber: Subscriber, **values: str) -> list[str]:
    changed = [name for name, value in values.items() if value and not getattr(subscriber, name)]
    if changed:
        for name in changed:
            setattr(subscriber, name, values[name])
        subscriber.save(update_fields=changed)
    return changed


def subscription_confirm(
    *, subscriber: Subscriber, nonce: str, ip: str | None = None
) -> list[Subscription]:
    """Confirm the subscriber's pending subscriptions (double opt-in, second step) with
    the link of the current request, whose nonce is `nonce`; any other link raises
    BadToken and changes nothing.

    Each becomes `active`, or `awaiting_approval` where the publication requires staff
    approval. Only `pending` ones change, and confirming (like ending) replaces the
    nonce: a link from before is never used again, so it cannot revive a subscription
    or confirm a later request. Confirming an address whose reader was erased lifts
    that erasure's suppression. Returns the subscriptions that changed."""
    from subscriptions import tasks

    now = timezone.now()
    changed: list[Subscription] = []
    with transaction.atomic():
        Subscriber.objects.select_for_update().get(pk=subscriber.pk).check_confirm_nonce(nonce)
        for subscription in subscriber.subscriptions.pending().select_related("publication"):
            if subscription.publication.requires_approval:
                ok = _transition(
                    subscription,
                    allowed=[Status.PENDING],
                    to=Status.AWAITING_APPROVAL,
                    note="confirmed by the reader",
                )
            else:
                ok = _transition(
                    subscription,
                    allowed=[Status.PENDING],
                    to=Status.ACTIVE,
                    note="confirmed by the reader",
                    confirmed_at=now,
                )
            if ok:
                changed.append(subscription)
        if changed:
            Subscriber.objects.filter(pk=subscriber.pk).update(consent_at=now, consent_ip=ip)
            erasure_lift(email=subscriber.email)
            activated = [s.pk for s in changed if s.status == Status.ACTIVE]
            if activated:
                tasks.send_welcome.delay_on_commit(subscriber.pk, activated)
    return changed


def subscription_unsubscribe(
    *,
    subscription: Subscription,
    reason: str = "",
    by: AbstractBaseUser | None = None,
) -> bool:
    """End a subscription. Idempotent: True only for the call that changed it."""
    with transaction.atomic():
        return _transition(
            subscription,
            allowed=Subscription.OPEN_STATUSES,
            to=Status.UNSUBSCRIBED,
            note=reason or "unsubscribed",
            by=by,
            ended_at=timezone.now(),
            reason=(reason or "unsubscribed")[:300],
        )


def subscription_approve(*, subscription: Subscription, by: AbstractBaseUser | None) -> bool:
    """Staff approve a confirmed request; the reader is told by email."""
    from subscriptions import tasks

    with transaction.atomic():
        ok = _transition(
            subscription,
            allowed=[Status.AWAITING_APPROVAL],
            to=Status.ACTIVE,
            note="approved by staff",
            by=by,
            confirmed_at=timezone.now(),
        )
        if ok:
            tasks.send_request_decision.delay_on_commit(subscription.pk)
    return ok


def subscription_reject(
    *, subscription: Subscription, by: AbstractBaseUser | None, note: str = ""
) -> bool:
    """Staff reject a confirmed request; the reader is told by email."""
    from subscriptions import tasks

    reason = "request rejected" + (f": {note}" if note else "")
    with transaction.atomic():
        ok = _transition(
            subscription,
            allowed=[Status.AWAITING_APPROVAL],
            to=Status.UNSUBSCRIBED,
            note=reason,
            by=by,
            ended_at=timezone.now(),
            reason=reason,
        )
        if ok:
            tasks.send_request_decision.delay_on_commit(subscription.pk)
    return ok


def suppression_add(*, email: str, reason: str, source: str) -> Suppression:
    """Put an address on the suppression list and end its open subscriptions (as
    bounced, complained or unsubscribed, by reason). Idempotent: an address already
    suppressed keeps its first record, and ended subscriptions stay as they are."""
    email = normalize_email(email)
    ends_as = SUPPRESSION_ENDS_AS.get(reason, Status.UNSUBSCRIBED)
    now = timezone.now()
    with transaction.atomic():
        suppression = Suppression.objects.active().matching(email).first()
        if suppression is None:
            suppression, _ = Suppression.objects.get_or_create(
                email_hash=address_hash(email),
                lifted_at=None,
                defaults={"email": email, "reason": reason, "source": source[:100]},
            )
        why = f"suppressed: {reason}" + (f" ({source})" if source else "")
        for subscription in Subscription.objects.open().filter(subscriber__email=email):
            _transition(
                subscription,
                allowed=Subscription.OPEN_STATUSES,
                to=ends_as,
                note=why,
                ended_at=now,
                reason=why,
            )
    return suppression


def suppression_lift(*, suppression: Suppression, by: AbstractBaseUser | None, note: str) -> bool:
    """Lift a suppression; the row stays for the record. Subscriptions stay ended: the
    person subscribes again through double opt-in."""
    lifted = Suppression.objects.filter(pk=suppression.pk, lifted_at__isnull=True).update(
        lifted_at=timezone.now(),
        lifted_note=note,
        lifted_by=by if by is not None and by.is_authenticated else None,
    )
    if lifted:
        suppression.refresh_from_db()
    return bool(lifted)


def preferences_link_send(*, email: str) -> None:
    """Email a fresh preferences link to a known, unsuppressed address, at most once per
    EMAIL_INTERVAL. Unknown addresses get nothing; the caller answers the same."""
    from subscriptions import tasks

    email = normalize_email(email)
    subscriber = Subscriber.objects.filter(email=email).first()
    if subscriber is None or is_suppressed(email) or not subscriber.subscriptions.exists():
        return
    with transaction.atomic():
        kind = EmailCooldown.Kind.PREFERENCES_LINK
        if _claim_email_slot(email, kind):
            release = lambda _: _release_email_slot(email, kind)  # noqa: E731
            queue_claimed(tasks.send_preferences_link, [(subscriber.pk,)], release)


@dataclass
class PreferencesChange:
    """What a save of the preferences page left waiting for the reader."""

    to_confirm: list[Subscription] = field(default_factory=list)  # pending, by email
    confirmation_sent: bool = False  # False: one went out in the last EMAIL_INTERVAL


def preferences_update(
    *,
    subscriber: Subscriber,
    name: str,
    publications: Iterable[Publication],
    format: str,
    address_proven: bool,
) -> PreferencesChange:
    """Apply the preferences page: the chosen publications are subscribed, the other
    active publications ended; one format for all.

    With `address_proven` (a fresh link from an email sent to this reader alone) an
    added publication is active at once, or awaiting approval where required. Any
    other link may have been forwarded (an issue's footer) or found later, so an added
    publication stays `pending` and the address gets a confirmation email for it."""
    chosen = {p.pk: p for p in publications}
    now = timezone.now()
    change = PreferencesChange()
    with transaction.atomic():
        if name != subscriber.name:
            subscriber.name = name
            subscriber.save(update_fields=["name"])
        existing = {
            s.publication_id: s for s in subscriber.subscriptions.select_related("publication")
        }
        for publication_id, subscription in existing.items():
            # A publication no longer offered is not on the form: leave it alone.
            if publication_id not in chosen and subscription.publication.active:
                _transition(
                    subscription,
                    allowed=Subscription.OPEN_STATUSES,
                    to=Status.UNSUBSCRIBED,
                    note="preferences page",
                    ended_at=now,
                    reason="preferences page",
                )
        suppressed = is_suppressed(subscriber.email)
        for publication in chosen.values():
            subscription = existing.get(publication.pk)
            if subscription is None:
                subscription = Subscription.objects.create(
                    subscriber=subscriber, publication=publication, status=Status.PENDING
                )
                SubscriptionEvent.objects.create(
                    subscription=subscription, to_status=Status.PENDING, reason="preferences page"
                )
            if suppressed:
                continue
            if not address_proven:
                _transition(
                    subscription,
                    allowed=ENDED_STATUSES,
                    to=Status.PENDING,
                    note="requested again: preferences page",
                    ended_at=None,
                    confirmed_at=None,
                    reason="",
                )
                if subscription.status == Status.PENDING:
                    change.to_confirm.append(subscription)
            elif publication.requires_approval:
                _transition(
                    subscription,
                    allowed=(*ENDED_STATUSES, Status.PENDING),
                    to=Status.AWAITING_APPROVAL,
                    note="preferences page",
                    ended_at=None,
                    reason="",
                )
            else:
                _transition(
                    subscription,
                    allowed=(*ENDED_STATUSES, Status.PENDING),
                    to=Status.ACTIVE,
                    note="preferences page",
                    ended_at=None,
                    reason="",
                    confirmed_at=now,
                )
        subscriber.subscriptions.open().exclude(format=format).update(format=format)
        if change.to_confirm:
            change.confirmation_sent = confirmation_send(subscriber=subscriber)
        if address_proven and not subscriber.consent_at:
            Subscriber.objects.filter(pk=subscriber.pk).update(consent_at=now)
    return change


def contact_message_create(
    *,
    name: str,
    email: str,
    subject: str,
    body: str,
    publication: Publication | None,
    ip: str | None,
) -> ContactMessage:
    """Store a message to the editors; acknowledge it to the sender and notify staff."""
    from subscriptions import tasks

    with transaction.atomic():
        message = ContactMessage.objects.create(
            name=name,
            email=normalize_email(email),
            subject=subject,
            body=body,
            publication=publication,
            ip=ip,
        )
        tasks.send_contact_notification.delay_on_commit(message.pk)
        if not is_suppressed(message.email):
            tasks.send_contact_acknowledgement.delay_on_commit(message.pk)
    return message
