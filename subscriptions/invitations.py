"""Invitations: readers of a legacy list (fax, post, an old mailing list) who have an
address are invited to keep the publication by email, instead of being asked to confirm
a subscription they never requested.

The rules: the invitation is one email with one button; ignoring it changes nothing. Up
to two reminders follow, on the publication's days after the invitation, each sent
exactly once however many sweeps run at once (claimed with the rows locked, by an
UPDATE of `reminders_sent`). Only a `pending` invitation is reminded: accepting it
(`active`), unsubscribing, a bounce or a complaint ends them, and so does its expiry
(Subscription.INVITATION_DAYS after the last message). Accepting records the consent
("invitation", with time and IP)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from issues.models import Publication
from subscriptions.models import Subscriber, Subscription
from subscriptions.services import _transition, confirmation_send, queue_claimed

Status = Subscription.Status
INVITATION_AGE = timedelta(days=Subscription.INVITATION_DAYS)


def permission_request(*, subscriptions: Sequence[Subscription], source: str) -> None:
    """Ask imported readers for permission to email them: the invitation for the legacy
    lists, the confirmation (re-permission) for any other source. Call inside the
    transaction that made the subscriptions pending; the emails go after commit."""
    if source in Subscriber.LEGACY_SOURCES:
        invitations_send(subscriptions=subscriptions)
        return
    people = {s.subscriber_id: s.subscriber for s in subscriptions}
    for subscriber in people.values():
        confirmation_send(subscriber=subscriber)


def invitations_send(*, subscriptions: Sequence[Subscription]) -> int:
    """Invite each pending subscription once (`invited_at` is the claim), in two queries
    whatever their number; returns how many were invited now."""
    from subscriptions import tasks

    with transaction.atomic():
        claimed = list(
            Subscription.objects.select_for_update()
            .filter(
                pk__in=[s.pk for s in subscriptions],
                status=Status.PENDING,
                invited_at__isnull=True,
            )
            .values_list("pk", flat=True)
        )
        Subscription.objects.filter(pk__in=claimed).update(invited_at=timezone.now())
        queue_claimed(tasks.send_invitation, [(pk, 0) for pk in claimed], _uninvite)
    return len(claimed)


def _uninvite(calls: Sequence[tuple[int, int]]) -> None:
    """The invitations of these (subscription, 0) calls were not queued."""
    Subscription.objects.filter(pk__in=[pk for pk, _ in calls]).update(invited_at=None)


def invitation_accept(*, subscription: Subscription, ip: str | None) -> bool:
    """The reader pressed the button: the subscription becomes active and the consent is
    recorded. True for the call that changed it; an old link for an ended or already
    active subscription changes nothing."""
    from subscriptions import tasks

    now = timezone.now()
    with transaction.atomic():
        ok = _transition(
            subscription,
            allowed=[Status.PENDING],
            to=Status.ACTIVE,
            note="invitation accepted",
            confirmed_at=now,
            converted_at=now,
        )
        if ok:
            Subscriber.objects.filter(pk=subscription.subscriber_id).update(
                consent_at=now, consent_ip=ip, consent_form="invitation"
            )
            tasks.send_welcome.delay_on_commit(subscription.subscriber_id, [subscription.pk])
    return ok


def invitation_reminders_send(*, now: datetime | None = None) -> int:
    """Claim and queue the reminders due now; returns how many were claimed.

    Reminder n goes `days[n]` after the invitation and, for the second, as long after the
    first as the days say, so one sweep after a long pause never sends both. They are
    claimed REMINDER_BATCH at a time: rows locked (others' locks skipped), then one
    UPDATE of `reminders_sent` n-1 -> n. Of sweeps running at once, exactly one sends
    each reminder."""
    from subscriptions import tasks

    now = now or timezone.now()
    claimed = 0
    for publication in Publication.objects.filter(
        Q(invitation_first_reminder_days__isnull=False)
        | Q(invitation_second_reminder_days__isnull=False)
    ):
        days = publication.invitation_reminder_days
        # the later reminder first: a reminder claimed now is never also the next one
        for n in range(len(days), 0, -1):
            due = Subscription.objects.filter(
                publication=publication,
                status=Status.PENDING,
                invited_at__lte=now - timedelta(days=days[n - 1]),
                invited_at__gt=now - INVITATION_AGE,
                reminders_sent=n - 1,
            )
            if n > 1:
                due = due.filter(reminded_at__lte=now - timedelta(days=days[n - 1] - days[n - 2]))
            while won := _reminders_claim(due, n, now):
                before = dict(won)
                give_back = functools.partial(_unremind, before=before)
                queue_claimed(tasks.send_invitation, [(pk, n) for pk in before], give_back)
                claimed += len(won)
    return claimed


REMINDER_BATCH = 500


def _reminders_claim(due, n: int, now: datetime) -> list[tuple[int, datetime | None]]:
    """Up to REMINDER_BATCH of the `due` subscriptions, marked as sent reminder `n`:
    their ids, with when they were reminded before."""
    with transaction.atomic():
        rows = list(
            due.select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", "reminded_at")[:REMINDER_BATCH]
        )
        if rows:
            Subscription.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                reminders_sent=n, reminded_at=now
            )
    return rows


def _unremind(calls: Sequence[tuple[int, int]], before: dict[int, datetime | None]) -> None:
    """The reminders of these (subscription, n) calls were not queued: each as it was
    before the claim."""
    Subscription.objects.bulk_update(
        [Subscription(pk=pk, reminders_sent=n - 1, reminded_at=before[pk]) for pk, n in calls],
        ["reminders_sent", "reminded_at"],
    )
