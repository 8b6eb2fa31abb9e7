"""Handing out chunks: the issue's queued, due rows go to `send_chunk` tasks a window at a
time, in id order past the job's cursor; each finished chunk hands out the next one,
and the send is finished once no row is left queued or sending. Rows that wait for a
retry are looked at again when the first of them falls due (`wake_at`), not only by
the sweeper."""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from delivery import transports
from delivery.models import Delivery, SendJob
from issues import services as editorial
from issues.models import Issue

log = logging.getLogger(__name__)

Status = Delivery.Status


def priorities() -> tuple[int, int]:
    """The broker priorities of chunks of rows due again (a retry, a lost worker's rows)
    and of new rows' chunks: the first go before the window of new chunks already
    queued. Redis keeps a list per priority step and serves 0 first; RabbitMQ serves
    the highest first, in queues declared with `x-max-priority`
    (CELERY_TASK_QUEUE_MAX_PRIORITY, set for RabbitMQ only)."""
    highest = getattr(settings, "CELERY_TASK_QUEUE_MAX_PRIORITY", None)
    return (0, 6) if highest is None else (highest, 0)


def chunk_size(rate: int | None) -> int:
    """Rows a chunk task claims: DELIVERY_CHUNK_SIZE, or as many as keep every lane of
    the transport busy (an ESP's calls in flight, each a whole batch)."""
    size = max(settings.DELIVERY_CHUNK_SIZE, transports.rows_to_fill_lanes())
    # A rate-limited chunk must finish well within its lease.
    return max(1, min(size, rate * settings.DELIVERY_LEASE_SECONDS // 3)) if rate else size


def due() -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())


def dispatch(
    *, issue_id: int, chunks: int | None = None, size: int | None = None, ahead: bool = True
) -> int:
    """Hand out up to `chunks` chunks of the issue's queued, due rows. Rows behind the
    job's cursor that are due again (a retry, a row taken back from a lost worker) go
    first, each marked so that it is not handed out twice; then new rows, in id order
    past the cursor (unless `ahead` is false), without writing to them. `size` is the
    chunk size, if the caller knows it. Returns the number of tasks enqueued."""
    from delivery.tasks import send_chunk

    with transaction.atomic():
        # The job's row alone is locked and read: a lock taken through a join would
        # lock (write to) the issue's and the publication's rows at every chunk too.
        job = (
            SendJob.objects.select_for_update()
            .only("state", "first_id", "last_id", "cursor", "issue_id")
            .filter(issue_id=issue_id)
            .first()
        )
        if job is None or job.state != SendJob.State.RUNNING or job.first_id is None:
            return 0
        if size is None:
            rate = Issue.objects.filter(pk=issue_id).values("publication__messages_per_second")
            size = chunk_size(rate[0]["publication__messages_per_second"])
        want = size * (chunks or settings.DELIVERY_WINDOW)
        now = timezone.now()
        queued = Delivery.objects.filter(issue_id=issue_id, status=Status.QUEUED).filter(due())
        # Only a retry or a release sets `next_attempt_at` (an index of its own).
        stale = now - timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
        ids = list(
            queued.filter(id__lte=job.cursor, next_attempt_at__isnull=False)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale))
            .order_by("id")
            .values_list("id", flat=True)[:want]
        )
        ranges = [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]
        behind = len(ranges)
        if ids:
            Delivery.objects.filter(id__in=ids).update(enqueued_at=now)
        want -= len(ids)
        start = None
        if ahead and want > 0:
            start = (
                queued.filter(id__gt=job.cursor, id__lte=job.last_id)
                .order_by("id")
                .values_list("id", flat=True)
                .first()
            )
        if start is not None:
            # Whole id ranges from the first queued row on, not read row by row: a
            # chunk claims only what in its range is still queued and due.
            end = min(start + want - 1, job.last_id)
            ranges += [(lo, min(lo + size - 1, end)) for lo in range(start, end + 1, size)]
            job.cursor = end
        if not ranges:
            return 0
        job.handed_out_at = now
        job.save(update_fields=["cursor", "handed_out_at"])
        again, new = priorities()
        for n, (lo, hi) in enumerate(ranges):
            send_chunk.apply_async_on_commit(
                (issue_id, lo, hi), priority=again if n < behind else new
            )
    return len(ranges)


def _wake_key(issue_id: int, second: int) -> str:
    return f"delivery:wake:{issue_id}:{second}"


def wake_at(issue_id: int, when: datetime) -> None:
    """Look at the issue again when `when` comes (a retry falls due): a `wake` task at
    the next whole second, one per issue and second however many rows ask for it, so
    that every row due within that second is due when it comes."""
    from delivery.tasks import wake

    second = math.ceil(when.timestamp())
    ttl = max(0, second - int(time.time())) + 60
    # Only a hint (the sweeper finds due rows anyway): a cache or a broker away must
    # not fail the record of a step that asked for it.
    try:
        if cache.add(_wake_key(issue_id, second), 1, timeout=ttl):
            wake.apply_async((issue_id, second), countdown=max(0.0, second - time.time()))
    except Exception as exc:  # whatever the cache or the broker raise
        log.warning("no wake-up planned for issue %s: %s", issue_id, exc)


def woken(issue_id: int, second: int) -> None:
    """The wake-up for `second` has come: that second may be planned again. A timer
    that fires a moment early finds the rows not due yet, and plans a look for them in
    the same second."""
    try:
        cache.delete(_wake_key(issue_id, second))
    except Exception as exc:  # the look goes on; the sweeper is the safety net
        log.warning("wake-up of issue %s not cleared: %s", issue_id, exc)


def wake_when_due(issue_id: int) -> bool:
    """Plan a look at the issue for its first queued row not due yet, if any."""
    first = (
        Delivery.objects.filter(
            issue_id=issue_id, status=Status.QUEUED, next_attempt_at__gt=timezone.now()
        )
        .order_by()
        .aggregate(first=Min("next_attempt_at"))["first"]
    )
    if first is not None:
        wake_at(issue_id, first)
    return first is not None


def rewind(issue_id: int) -> None:
    """Walk the issue's rows from the start again: whatever is still queued and due is
    handed out anew (after a pause, or when tasks were lost)."""
    SendJob.objects.filter(issue_id=issue_id, first_id__isnull=False).update(
        cursor=F("first_id") - 1
    )


def finish_if_done(*, issue_id: int) -> bool:
    """Mark the issue sent once every row is final. Returns whether it is done."""
    unfinished = Delivery.objects.filter(issue_id=issue_id).exclude(status__in=Delivery.FINAL)
    # From the last row back: the chunks still in flight are the last handed out.
    if unfinished.order_by("-id").values_list("id", flat=True).first() is not None:
        return False
    with transaction.atomic():
        updated = SendJob.objects.filter(issue_id=issue_id, state=SendJob.State.RUNNING).update(
            state=SendJob.State.DONE, finished_at=timezone.now()
        )
        if updated:
            issue = Issue.objects.get(pk=issue_id)
            if issue.status == Issue.Status.SENDING:
                editorial.issue_mark_sent(issue=issue)
            log.info("send finished: %s", issue)
    return True
