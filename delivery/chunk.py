"""Sending one chunk: its rows claimed with a conditional UPDATE and a lease, each
subscription checked again, the messages sent over one connection with no transaction
open, and every row's outcome recorded as the chunk goes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from delivery.dispatch import chunk_size, dispatch, due, finish_if_done
from delivery.models import Delivery, SendJob
from delivery.rate import reserve
from delivery.record import outcomes_record
from delivery.rendering import Recipient, RenderedIssue, rendered_issue
from delivery.transports import Outcome, names_needed, transport
from issues.models import Issue
from subscriptions.models import Subscription, Suppression
from subscriptions.tokens import PREFERENCES, UNSUBSCRIBE, url_maker

Status = Delivery.Status


@dataclass
class ChunkResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0


def chunk_send(*, issue_id: int, lo: int, hi: int) -> ChunkResult:
    """Send the queued, due rows of one issue with ids in [lo, hi], a chunk at a time,
    then hand out the next chunk, or finish the issue if nothing is left."""
    result = ChunkResult()
    while True:
        job = (
            SendJob.objects.select_related("issue__publication", "issue__volume")
            .filter(issue_id=issue_id)
            .first()
        )
        if job is None or job.state != SendJob.State.RUNNING:
            return result
        # Fewer rows than a chunk, or a range no longer than one: nothing is left in it.
        size = chunk_size(job.issue.publication.messages_per_second)
        if _send_claimed(job.issue, lo, hi, size, result) < size or hi - lo < size:
            break
    if not dispatch(issue_id=issue_id, chunks=1, size=size):
        finish_if_done(issue_id=issue_id)
    return result


def _send_claimed(issue: Issue, lo: int, hi: int, size: int, result: ChunkResult) -> int:
    """Claim up to `size` rows (a chunk) in [lo, hi], send them and record the outcome.
    Returns how many rows were claimed (0: nothing left to do)."""
    rate = issue.publication.messages_per_second
    token = uuid.uuid4()
    lease = timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    queued = Delivery.objects.filter(
        issue_id=issue.pk, id__gte=lo, id__lte=hi, status=Status.QUEUED
    ).filter(due())
    if hi - lo >= size:  # one scan of the id range, up to its size-th claimable row
        last = Coalesce(Subquery(queued.order_by("id").values("id")[size - 1 : size]), Value(hi))
        queued = queued.filter(id__lte=last)
    claimed = queued.update(
        status=Status.SENDING,
        claim=token,
        lease_until=timezone.now() + lease,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return 0
    result.claimed += claimed
    rendered = rendered_issue(issue)
    mine = Delivery.objects.filter(issue_id=issue.pk, id__gte=lo, id__lte=hi, claim=token)
    rows = list(
        mine.annotate(
            suppressed=Exists(Suppression.objects.active().filter(email=OuterRef("email")))
        )
        .order_by("id")
        .values_list(
            "id",
            "email",
            "attempts",
            "subscriber_id",
            "subscription_id",
            # no join of the subscribers where no name is written
            "subscriber__name" if names_needed(rendered) else Value(""),
            "subscription__format",
            "subscription__status",
            "suppressed",
        )
    )
    # Someone who unsubscribed (or was suppressed) a second ago gets nothing.
    active = Subscription.Status.ACTIVE
    skipped = {row[0] for row in rows if row[8] or row[7] != active}
    if skipped:
        result.skipped += mine.filter(id__in=skipped).update(
            status=Status.SKIPPED,
            claim=None,
            lease_until=None,
            last_error="Unsubscribed or suppressed before sending.",
        )
    unsubscribe = url_maker(UNSUBSCRIBE, "unsubscribe")
    preferences = url_maker(PREFERENCES, "preferences")
    batch = [
        (
            delivery_id,
            Recipient.for_subscription(
                issue_id=issue.pk,
                subscriber_id=subscriber_id,
                subscription_id=subscription_id,
                email=email,
                name=name,
                format=format,
                unsubscribe=unsubscribe,
                preferences=preferences,
            ),
        )
        for delivery_id, email, _, subscriber_id, subscription_id, name, format, *_ in rows
        if delivery_id not in skipped
    ]
    if batch:
        attempts = {row[0]: row[2] for row in rows}
        held = {delivery_id for delivery_id, _ in batch}
        outcome = _send(
            issue,
            rendered,
            batch,
            rate=rate,
            renew=lambda: mine.update(lease_until=timezone.now() + lease),
            record=lambda part: outcomes_record(issue.pk, mine, part, attempts, held),
        )
        result.sent += len(outcome.sent)
        result.retried += len(outcome.retry)
        result.failed += len(outcome.failed)
    return claimed


def _send(
    issue: Issue,
    rendered: RenderedIssue,
    batch: list[tuple[int, Recipient]],
    *,
    rate: int | None,
    renew: Callable[[], object],
    record: Callable[[Outcome], None],
) -> Outcome:
    """Send with no transaction open, recording outcomes as it goes, so that a worker
    killed mid-chunk leaves at most one step of messages in doubt. A rate-limited
    publication goes a second's worth of messages at a time, renewing the lease; any
    other chunk renews it once a third of it has gone by (a slow server)."""
    total = Outcome()
    renewed = time.time()
    with transport() as mailer:
        step = min(mailer.record_every, rate) if rate else mailer.record_every
        for start in range(0, len(batch), step):
            part = batch[start : start + step]
            if rate:
                wait = reserve(issue.publication_id, rate, len(part)) - time.time()
                if wait > 0:
                    time.sleep(wait)
            if rate or time.time() - renewed > settings.DELIVERY_LEASE_SECONDS / 3:
                renew()
                renewed = time.time()
            outcome = mailer.send(rendered, part)
            record(outcome)
            total.merge(outcome)
    return total
