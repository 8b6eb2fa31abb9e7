"""Handing out chunks: the issue's queued, due rows go to `send_chunk` tasks a window at a
time, in id order past the job's cursor; each finished chunk hands out the next one,
and the send is finished once no row is left queued or sending."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from delivery import transports
from delivery.models import Delivery, SendJob
from issues import services as editorial
from issues.models import Issue

log = logging.getLogger(__name__)

Status = Delivery.Status


def chunk_size(rate: int | None) -> int:
    """Rows a chunk task claims: DELIVERY_CHUNK_SIZE, or as many as keep every lane of
    the transport busy (an ESP's calls in flight, each a whole batch)."""
    size = max(settings.DELIVERY_CHUNK_SIZE, transports.rows_to_fill_lanes())
    # A rate-limited chunk must finish well within its lease.
    return max(1, min(size, rate * settings.DELIVERY_LEASE_SECONDS // 3)) if rate else size


def due() -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())


def dispatch(*, issue_id: int, chunks: int | None = None, size: int | None = None) -> int:
    """Hand out up to `chunks` chunks of the issue's queued, due rows. New rows are
    taken in id order past the job's cursor, without writing to them; once the cursor
    is at the end, rows behind it that wait for a retry are handed out when due, each
    marked so that it is not handed out twice. `size` is the chunk size, if the caller
    knows it. Returns the number of tasks enqueued."""
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
            ranges = [(lo, min(lo + size - 1, end)) for lo in range(start, end + 1, size)]
            job.cursor = end
        else:
            stale = now - timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
            ids = list(
                queued.filter(id__lte=job.cursor, next_attempt_at__isnull=False)
                .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale))
                .order_by("id")
                .values_list("id", flat=True)[:want]
            )
            if not ids:
                return 0
            Delivery.objects.filter(id__in=ids).update(enqueued_at=now)
            ranges = [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]
        job.handed_out_at = now
        job.save(update_fields=["cursor", "handed_out_at"])
        for lo, hi in ranges:
            send_chunk.delay_on_commit(issue_id, lo, hi)
    return len(ranges)


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
