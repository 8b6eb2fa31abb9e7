"""Joining by code: an offline reader types the code from their letter and an address at
/join/, confirms the address from the email it receives, and their offline
subscriptions become email subscriptions.

The rules: nothing about the code's owner is shown or sent before the address is
confirmed (the email is neutral, the answer to a wrong code the same whatever the
code). The link carries a keyed digest of the address, not the address, and is void once
another address is typed with the code. Confirming keeps the reader's source and
history (each subscription goes offline -> active, "joined by code") and records the
consent ("join code", time, IP); the code is then used up.

When the confirmed address already belongs to another subscriber (a reader of another
publication by email, say), the offline subscriptions are merged into that subscriber:
one moves over where that subscriber has none for its publication; where they have one,
theirs is made active (an explicit, confirmed request) and the offline one ends,
"merged". The offline reader's blank details are filled in on the address's subscriber.
Their own row stays, with its source and history, without a code."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from subscriptions.joincodes import join_code_normalize
from subscriptions.models import Subscriber, Subscription
from subscriptions.services import (
    EMAIL_INTERVAL,
    ENDED_STATUSES,
    _fill_blanks,
    _transition,
    erasure_lift,
    is_suppressed,
    normalize_email,
    queue_claimed,
)
from subscriptions.tokens import join_email_digest

Status = Subscription.Status


def join_code_owner(code: str) -> Subscriber | None:
    """The reader whose unused code this is (typed in any form), or None."""
    canonical = join_code_normalize(code)
    if canonical is None:
        return None
    return (
        Subscriber.objects.filter(join_code=canonical, subscriptions__status=Status.OFFLINE)
        .distinct()
        .first()
    )


def join_request(*, code: str, email: str) -> bool:
    """Email a confirmation link to `email` for the reader of `code`. False for a wrong
    or used code. True otherwise, also when nothing is sent (a suppressed address, or the
    same address again within EMAIL_INTERVAL): the caller answers the same."""
    from subscriptions import tasks

    owner = join_code_owner(code)
    if owner is None:
        return False
    email = normalize_email(email)
    if is_suppressed(email, asking_again=True):
        return True
    now = timezone.now()
    with transaction.atomic():
        fresh = Subscriber.objects.filter(
            pk=owner.pk, join_email=email, join_requested_at__gt=now - EMAIL_INTERVAL
        ).exists()
        if not fresh:
            Subscriber.objects.filter(pk=owner.pk).update(join_email=email, join_requested_at=now)
            asked = Subscriber.objects.filter(pk=owner.pk, join_requested_at=now)
            queue_claimed(
                tasks.send_join_confirmation,
                [(owner.pk,)],
                lambda _: asked.update(join_requested_at=None),
            )
    return True


def join_link_subscriber(*, subscriber_id: int, digest: str) -> Subscriber | None:
    """The reader a join link is for, while the address it was sent to is the one last
    typed with their code."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id, join_email__isnull=False).first()
    if subscriber is None or join_email_digest(subscriber.join_email) != digest:
        return None
    return subscriber


def join_confirm(*, subscriber: Subscriber, ip: str | None) -> list[Subscription]:
    """Move the reader's offline subscriptions to the confirmed address; returns what the
    address now receives of them (the address's subscriber's subscriptions, after a
    merge). A second call returns []."""
    from subscriptions import tasks

    now = timezone.now()
    note = "joined by code"
    with transaction.atomic():
        reader = Subscriber.objects.select_for_update().filter(pk=subscriber.pk).first()
        if reader is None or not reader.join_email:
            return []
        offline = list(reader.subscriptions.filter(status=Status.OFFLINE))
        if not offline:
            return []
        email = reader.join_email
        owner = Subscriber.objects.filter(email=email).exclude(pk=reader.pk).first()
        activated: list[Subscription] = []  # changed to active now
        receiving: list[Subscription] = []  # what the address receives, for the page
        if owner is None:
            reader.email = email
            owner = reader
        else:
            _fill_blanks(
                owner,
                name=reader.name,
                organization=reader.organization,
                fax=reader.fax,
                postal_address=reader.postal_address,
            )
        theirs = {s.publication_id: s for s in owner.subscriptions.all()} if owner != reader else {}
        for subscription in offline:
            existing = theirs.get(subscription.publication_id)
            if existing is None:
                moved = owner != reader
                if moved:
                    Subscription.objects.filter(pk=subscription.pk).update(subscriber=owner)
                _transition(
                    subscription,
                    allowed=[Status.OFFLINE],
                    to=Status.ACTIVE,
                    note=f"{note} (moved from offline reader {reader.pk})" if moved else note,
                    confirmed_at=now,
                    converted_at=now,
                )
                activated.append(subscription)
                receiving.append(subscription)
                continue
            if _transition(
                existing,
                allowed=(*ENDED_STATUSES, Status.PENDING),
                to=Status.ACTIVE,
                note=note,
                confirmed_at=now,
                ended_at=None,
                reason="",
            ):
                activated.append(existing)
            receiving.append(existing)
            merged = f"{note}: merged into subscription {existing.pk}"
            _transition(
                subscription,
                allowed=[Status.OFFLINE],
                to=Status.UNSUBSCRIBED,
                note=merged,
                ended_at=now,
                reason=merged,
                converted_at=now,
            )
        reader.join_code = None  # used up; the address stays for the link's "done" page
        reader.save(update_fields=["email", "join_code"])
        Subscriber.objects.filter(pk=owner.pk).update(
            consent_at=now, consent_ip=ip, consent_form="join code"
        )
        erasure_lift(email=email)
        if activated:
            tasks.send_welcome.delay_on_commit(owner.pk, [s.pk for s in activated])
    return receiving
