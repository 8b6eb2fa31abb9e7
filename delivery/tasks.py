from __future__ import annotations

import contextlib
import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError, connection

from delivery import bounces, chunk, dispatch
from delivery import retention as retention_policy
from delivery import sweep as sweeper
from delivery.record import DATABASE_LOST

log = logging.getLogger(__name__)

# A task that meets a database away tries again this much later, at most (so that
# sending resumes within seconds of its return), for about an hour.
DATABASE_RETRY_MAX_SECONDS = 5
DATABASE_RETRIES = 720


def _database_lost(task: Task, exc: Exception) -> Exception:
    """The retry of `task` a few seconds later, over a new database connection."""
    with contextlib.suppress(DatabaseError):
        connection.close()
    countdown = min(DATABASE_RETRY_MAX_SECONDS, 0.5 * 2**task.request.retries)
    return task.retry(exc=exc, countdown=countdown, max_retries=DATABASE_RETRIES)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def send_chunk(self: Task, issue_id: int, lo: int, hi: int) -> dict[str, int]:
    """Send one chunk of an issue. A crash leaves the rows leased; the sweeper takes
    them back when the lease runs out. A database away makes it try again (the rows it
    had claimed and not recorded wait for their lease, like a crash's)."""
    try:
        return vars(chunk.chunk_send(issue_id=issue_id, lo=lo, hi=hi))
    except DATABASE_LOST as exc:
        raise _database_lost(self, exc) from exc


@shared_task(bind=True)
def wake(self: Task, issue_id: int, second: int | None = None) -> int:
    """A retry of the issue falls due: hand it out (delivery/dispatch.py, `wake_at`)."""
    try:
        if second is not None:
            dispatch.woken(issue_id, second)
        return chunk.look_again(issue_id=issue_id)
    except DATABASE_LOST as exc:
        raise _database_lost(self, exc) from exc


@shared_task
def sweep() -> dict[str, int]:
    """Beat: the periodic look at the database. With the database away it says so and
    leaves the work to the next one."""
    try:
        return sweeper.sweep()
    except DATABASE_LOST as exc:
        with contextlib.suppress(DatabaseError):
            connection.close()
        log.warning("sweep skipped, the database is away: %s", exc)
        return {}


@shared_task
def retention() -> dict[str, int]:
    """Beat, daily: readers' data past its retention time goes (delivery/retention.py)."""
    return retention_policy.retention_apply()


@shared_task
def bounces_poll() -> dict[str, int]:
    """Beat, every MONITOR_BOUNCE_POLL_SECONDS when MONITOR_BOUNCE_IMAP_URL is set: the
    delivery reports in the bounce mailbox (delivery/bounces.py)."""
    try:
        summary = bounces.imap_process(settings.BOUNCE_IMAP_URL)
    except bounces.Busy as exc:
        log.info("bounce poll skipped: %s", exc)  # the next poll reads what is left
        return {"read": 0, "counted": 0, "kept": 0}
    return {"read": summary.read, "counted": summary.counted, "kept": summary.kept}
