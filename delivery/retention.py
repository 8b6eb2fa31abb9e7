"""Readers' data past its time, removed once a day by beat (settings RETAIN_*, in days).

What goes:
* an unconfirmed request, after RETAIN_UNCONFIRMED_DAYS: a subscription still pending
  that long after it was last asked for, that was never confirmed and is not an
  invitation (those have their own schedule, subscriptions/invitations.py); then the
  subscribers left with nothing (no subscription, no consent, never mailed) who are
  that old; and an address typed with a join code that long ago;
* the IP address of a consent record (taken at the confirmation, else at the request)
  and of a contact message, after RETAIN_IP_DAYS; the time and the form stay;
* an open or click event, after RETAIN_EVENTS_DAYS, counted first into its issue's
  tallies (delivery/tallies.py), so that the report's figures stay as they were;
* a message read from the bounce mailbox (its record: key, subject, reason), after
  RETAIN_EVENTS_DAYS too; what it counted stays on the deliveries and suppressions;
* a mailbox's confirmation cooldown, once its interval is over.
Each step goes BATCH rows at a time, each batch a short transaction of its own, found
through an index; the delivery rows are never touched. `retention_apply` returns how
many rows each step removed or changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from delivery.models import BounceMessage, Delivery, DeliveryEvent
from delivery.tallies import events_fold
from issues.models import Issue
from subscriptions.hashing import hashes_refresh
from subscriptions.models import (
    ContactMessage,
    EmailCooldown,
    Subscriber,
    Subscription,
    SubscriptionEvent,
)
from subscriptions.services import EMAIL_INTERVAL

log = logging.getLogger(__name__)

BATCH = 1000
Status = Subscription.Status
TRACKED = (DeliveryEvent.Kind.OPENED, DeliveryEvent.Kind.CLICKED)


def _in_batches(rows: QuerySet, step: Callable[[list[int]], int]) -> int:
    """Apply `step` to the ids of `rows`, BATCH at a time, until none is left."""
    done = 0
    while True:
        ids = list(rows.order_by("pk").values_list("pk", flat=True)[:BATCH])
        if not ids:
            return done
        with transaction.atomic():
            done += step(ids)
        if len(ids) < BATCH:
            return done


def _deleted(model) -> Callable[[list[int]], int]:
    def step(ids: list[int]) -> int:
        _, per_model = model.objects.filter(pk__in=ids).delete()
        return per_model.get(model._meta.label, 0)

    return step


def _updated(model, **values) -> Callable[[list[int]], int]:
    return lambda ids: model.objects.filter(pk__in=ids).update(**values)


def unconfirmed_requests(cutoff: datetime) -> QuerySet[Subscription]:
    confirmed = SubscriptionEvent.objects.filter(
        subscription=OuterRef("pk"), to_status__in=[Status.ACTIVE, Status.AWAITING_APPROVAL]
    )
    asked_since = SubscriptionEvent.objects.filter(subscription=OuterRef("pk"), at__gte=cutoff)
    return Subscription.objects.filter(
        status=Status.PENDING, invited_at__isnull=True, created_at__lt=cutoff
    ).exclude(Exists(confirmed) | Exists(asked_since))


def abandoned_subscribers(cutoff: datetime) -> QuerySet[Subscriber]:
    return Subscriber.objects.filter(created_at__lt=cutoff, consent_at__isnull=True).exclude(
        Exists(Subscription.objects.filter(subscriber=OuterRef("pk")))
        | Exists(Delivery.objects.filter(subscriber=OuterRef("pk")))
    )


def _events_removed(cutoff: datetime) -> int:
    """Opens and clicks before `cutoff`, through the (issue, kind, occurred_at) index:
    issue by issue, for the issues made before then (and the events of no issue)."""
    removed = 0
    issues = [None, *Issue.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)]
    for issue_id in issues:
        for kind in TRACKED:
            old = DeliveryEvent.objects.filter(
                Q(issue__isnull=True) if issue_id is None else Q(issue_id=issue_id),
                kind=kind,
                occurred_at__lt=cutoff,
            )
            removed += _in_batches(old, events_fold)
    return removed


def retention_apply(*, now: datetime | None = None) -> dict[str, int]:
    """Remove what the retention settings say is due; returns what went, by step."""
    now = now or timezone.now()
    unconfirmed = now - timedelta(days=settings.RETAIN_UNCONFIRMED_DAYS)
    ip = now - timedelta(days=settings.RETAIN_IP_DAYS)
    events = now - timedelta(days=settings.RETAIN_EVENTS_DAYS)
    result = {
        "unconfirmed requests": _in_batches(
            unconfirmed_requests(unconfirmed), _deleted(Subscription)
        ),
        "subscribers left with nothing": _in_batches(
            abandoned_subscribers(unconfirmed), _deleted(Subscriber)
        ),
        "unconfirmed join requests": _in_batches(
            Subscriber.objects.filter(join_requested_at__lt=unconfirmed),
            _updated(Subscriber, join_email=None, join_requested_at=None),
        ),
        "consent IP addresses": _in_batches(
            Subscriber.objects.filter(consent_ip__isnull=False)
            .alias(consented=Coalesce(F("consent_at"), F("created_at")))
            .filter(consented__lt=ip),
            _updated(Subscriber, consent_ip=None),
        ),
        "contact message IP addresses": _in_batches(
            ContactMessage.objects.filter(ip__isnull=False, created_at__lt=ip),
            _updated(ContactMessage, ip=None),
        ),
        "open and click events": _events_removed(events),
        "bounce mailbox records": _in_batches(
            BounceMessage.objects.filter(received_at__lt=events), _deleted(BounceMessage)
        ),
        "mailbox cooldowns": _in_batches(
            EmailCooldown.objects.filter(sent_at__lt=now - EMAIL_INTERVAL),
            _deleted(EmailCooldown),
        ),
    }
    # Hashes made with a key since rotated (subscriptions.hashing); nothing otherwise.
    hashes_refresh()
    log.info(
        "retention: %s",
        "; ".join(f"{what}: {n}" for what, n in result.items() if n) or "nothing was due",
    )
    return result
