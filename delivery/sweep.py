"""The sweeper (beat, every DELIVERY_SWEEP_SECONDS): the periodic look at the database that
finds whatever the broker lost. It starts due scheduled sends, releases rows whose lease
ran out (a killed worker), hands out again what a stalled send lost, and finishes sends."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from delivery.chunk import CANCELLED_BEFORE_SENDING
from delivery.dispatch import dispatch, finish_if_done, rewind
from delivery.models import Delivery, SendJob
from delivery.services import SendError, StartResult, send_start
from issues.models import Issue

log = logging.getLogger(__name__)

Status = Delivery.Status


def release_expired_leases() -> int:
    """Rows claimed by a worker that died: back to the queue (due at once), cancelled
    if their send was, or failed once they have used up their attempts. Only issues
    still being sent can have such rows."""
    now = timezone.now()
    active = SendJob.objects.exclude(state=SendJob.State.DONE).values("issue_id")
    expired = Delivery.objects.filter(
        issue_id__in=active, status=Status.SENDING, lease_until__lt=now
    )
    gave_up = expired.filter(attempts__gte=settings.DELIVERY_MAX_ATTEMPTS).update(
        status=Status.FAILED,
        claim=None,
        lease_until=None,
        last_error="Gave up: the worker sending it was lost too often.",
    )
    free = {"claim": None, "lease_until": None, "enqueued_at": None}
    cancelled = SendJob.objects.filter(state=SendJob.State.CANCELLED).values("issue_id")
    dropped = expired.filter(issue_id__in=cancelled).update(
        status=Status.CANCELLED, last_error=CANCELLED_BEFORE_SENDING, **free
    )
    # Due at once, they are handed out again like a retry (dispatch looks for those).
    released = expired.update(
        status=Status.QUEUED,
        next_attempt_at=now,
        last_error="The worker sending it was lost; sent again.",
        **free,
    )
    return gave_up + dropped + released


def start_due_scheduled() -> list[StartResult]:
    due = Issue.objects.filter(status=Issue.Status.SCHEDULED, scheduled_at__lte=timezone.now())
    results = []
    for issue in due:
        try:
            results.append(send_start(issue=issue, by=None))
        except SendError as exc:
            log.error("scheduled send of %s could not start: %s", issue, exc)
    return results


def sweep() -> dict[str, int]:
    """The periodic look at the database that finds whatever the broker lost."""
    started = len(start_due_scheduled())
    released = release_expired_leases()
    dispatched = finished = 0
    running = SendJob.objects.filter(state=SendJob.State.RUNNING)
    for job in running.only("issue_id", "handed_out_at"):
        if finish_if_done(issue_id=job.issue_id):
            finished += 1
            continue
        stale = timezone.now() - timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
        busy = (job.handed_out_at is not None and job.handed_out_at >= stale) or (
            Delivery.objects.filter(issue_id=job.issue_id, status=Status.SENDING).exists()
        )
        # A send that handed nothing out for a lease's time and has nothing in flight
        # lost its tasks (or waits for retries): walk its rows from the start again.
        # A busy one gets what is due behind its cursor (rows just released).
        if not busy:
            rewind(job.issue_id)
        dispatched += dispatch(issue_id=job.issue_id, ahead=not busy)
    return {
        "started": started,
        "released": released,
        "dispatched": dispatched,
        "finished": finished,
    }
