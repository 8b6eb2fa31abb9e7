"""Subscription workflows: request, confirm, approve, reject, unsubscribe, preferences,
suppression, contact messages and list import.

Each function that writes is atomic, checks the current status before it changes one
(a conditional UPDATE, so that concurrent callers change a row once), records the
change as a SubscriptionEvent, and enqueues its emails after commit."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from issues.models import Publication
from subscriptions.mailbox import mailbox
from subscriptions.models import (
    ContactMessage,
    EmailCooldown,
    Subscriber,
    Subscription,
    SubscriptionEvent,
    Suppression,
    validate_single_line,
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


def is_suppressed(email: str) -> bool:
    return Suppression.objects.active().filter(email=normalize_email(email)).exists()


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


def confirmation_send(*, subscriber: Subscriber) -> bool:
    """Queue a confirmation email unless one went to this mailbox in EMAIL_INTERVAL.

    The email carries a new request nonce: the links of earlier ones stop working."""
    from subscriptions import tasks

    with transaction.atomic():
        if not _claim_email_slot(subscriber.email, EmailCooldown.Kind.CONFIRMATION):
            return False
        _new_confirm_nonce(subscriber.pk)
        tasks.send_confirmation.delay_on_commit(subscriber.pk)
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
    suppressed address gets nothing. At most one confirmation email per mailbox per
    EMAIL_INTERVAL."""
    email = normalize_email(email)
    if is_suppressed(email):
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
    or confirm a later request. Returns the subscriptions that changed."""
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
        suppression, _ = Suppression.objects.get_or_create(
            email=email, lifted_at=None, defaults={"reason": reason, "source": source[:100]}
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
        if _claim_email_slot(email, EmailCooldown.Kind.PREFERENCES_LINK):
            tasks.send_preferences_link.delay_on_commit(subscriber.pk)


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


# --- list import --------------------------------------------------------------------

CREATED, UPDATED, SKIPPED, INVALID = "created", "updated", "skipped", "invalid"
IMPORT_COLUMNS = ("email", "name", "organization", "fax", "postal_address")
_LIMITS = {"name": 200, "organization": 200, "fax": 60, "postal_address": 1000}


@dataclass
class ImportRow:
    line: int
    outcome: str
    email: str
    message: str = ""


@dataclass
class ImportReport:
    rows: list[ImportRow] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {o: self.count(o) for o in (CREATED, UPDATED, SKIPPED, INVALID)}

    def summary(self) -> str:
        return ", ".join(f"{n} {o}" for o, n in self.counts.items())


def _import_row_errors(row: dict[str | None, Any]) -> list[str]:
    errors = []
    if None in row:
        errors.append("more values than columns")
    email = row.get("email") or ""
    if not email.strip():
        errors.append("email is empty")
    else:
        try:
            validate_email(email.strip())
        except ValidationError:
            errors.append(f"{email.strip()!r} is not a valid email address")
    for name, limit in _LIMITS.items():
        value = row.get(name) or ""
        if len(value) > limit:
            errors.append(f"{name} is longer than {limit} characters")
        elif name != "postal_address":
            try:
                validate_single_line(value)
            except ValidationError:
                errors.append(f"{name} contains a line break or control character")
    return errors


IMPORT_BLOCK = 1000


def subscribers_import(
    *,
    rows: Iterable[tuple[int, dict[str | None, Any]]],
    publication: Publication,
    source: str = Subscriber.Source.IMPORT,
    confirmed: bool = False,
    form: str = "import",
) -> ImportReport:
    """Import (line number, row) pairs of a legacy list into `publication`.

    Never a duplicate: a known address is updated (blank details filled in, the
    subscription added); a repeated address in the file, a suppressed one, or one that
    unsubscribed earlier is skipped (an import never resubscribes anyone). Rows are
    checked before anything is written, so an invalid row never stops the valid ones;
    valid rows are written a block at a time, each block in one transaction. Without
    `confirmed` new subscriptions are pending and each person gets one confirmation
    (re-permission) email."""
    report = ImportReport()
    seen: dict[str, int] = {}
    block: list[tuple[int, str, dict[str, str]]] = []
    for line, raw in rows:
        row = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}
        email = normalize_email(row.get("email") or "")
        errors = _import_row_errors(row)
        if errors:
            report.rows.append(ImportRow(line, INVALID, email, "; ".join(errors)))
            continue
        if email in seen:
            report.rows.append(
                ImportRow(line, SKIPPED, email, f"same address as line {seen[email]}")
            )
            continue
        seen[email] = line
        details = {k: row.get(k) or "" for k in ("name", "organization", "fax", "postal_address")}
        block.append((line, email, details))
        if len(block) >= IMPORT_BLOCK:
            report.rows += _import_block_retrying(block, publication, source, confirmed, form)
            block = []
    if block:
        report.rows += _import_block_retrying(block, publication, source, confirmed, form)
    report.rows.sort(key=lambda r: r.line)
    return report


def _import_block_retrying(*args: Any) -> list[ImportRow]:
    # Someone subscribing through the site between our look-up and our insert makes the
    # block's transaction fail whole; looking again then finds them.
    try:
        return _import_block(*args)
    except IntegrityError:
        return _import_block(*args)


def _import_block(
    block: list[tuple[int, str, dict[str, str]]],
    publication: Publication,
    source: str,
    confirmed: bool,
    form: str,
) -> list[ImportRow]:
    """Write one block of valid, distinct rows with a handful of queries."""
    emails = [email for _, email, _ in block]
    suppressed = set(
        Suppression.objects.active().filter(email__in=emails).values_list("email", flat=True)
    )
    now = timezone.now()
    status = Status.ACTIVE if confirmed else Status.PENDING
    out: list[ImportRow] = []
    with transaction.atomic():
        known = {s.email: s for s in Subscriber.objects.filter(email__in=emails)}
        subscriptions = {
            s.subscriber_id: s
            for s in Subscription.objects.filter(
                publication=publication, subscriber__in=list(known.values())
            )
        }
        new_people = Subscriber.objects.bulk_create(
            Subscriber(email=email, **details, source=source, consent_form=form[:100])
            for _, email, details in block
            if email not in known and email not in suppressed
        )
        people = {**known, **{s.email: s for s in new_people}}
        wanted = [
            people[email]
            for _, email, _ in block
            if email not in suppressed and people[email].pk not in subscriptions
        ]
        added = Subscription.objects.bulk_create(
            Subscription(
                subscriber=person,
                publication=publication,
                status=status,
                confirmed_at=now if confirmed else None,
            )
            for person in wanted
        )
        SubscriptionEvent.objects.bulk_create(
            SubscriptionEvent(
                subscription=subscription,
                to_status=status,
                reason=f"{form} (confirmed)" if confirmed else form,
            )
            for subscription in added
        )
        new_subscriptions = {s.subscriber_id for s in added}
        for line, email, details in block:
            if email in suppressed:
                out.append(ImportRow(line, SKIPPED, email, "on the suppression list"))
                continue
            person = people[email]
            if not confirmed and person.pk in new_subscriptions:
                confirmation_send(subscriber=person)
            if email not in known:
                out.append(ImportRow(line, CREATED, email))
                continue
            changed = _fill_blanks(person, **details)
            new = person.pk in new_subscriptions
            subscription = subscriptions.get(person.pk)
            if new or changed:
                what = (["subscribed"] if new else []) + changed
                out.append(ImportRow(line, UPDATED, email, ", ".join(what)))
            elif subscription.status in ENDED_STATUSES:
                out.append(
                    ImportRow(
                        line, SKIPPED, email, f"{subscription.status} earlier; not resubscribed"
                    )
                )
            else:
                out.append(ImportRow(line, SKIPPED, email, f"already {subscription.status}"))
    return out
