from __future__ import annotations

from celery import shared_task
from django.conf import settings

from delivery import bounces, chunk
from delivery import retention as retention_policy
from delivery import sweep as sweeper


@shared_task(acks_late=True, reject_on_worker_lost=True)
def send_chunk(issue_id: int, lo: int, hi: int) -> dict[str, int]:
    """Send one chunk of an issue. A crash leaves the rows leased; the sweeper takes
    them back when the lease runs out, so the task itself never retries."""
    return vars(chunk.chunk_send(issue_id=issue_id, lo=lo, hi=hi))


@shared_task
def sweep() -> dict[str, int]:
    return sweeper.sweep()


@shared_task
def retention() -> dict[str, int]:
    """Beat, daily: readers' data past its retention time goes (delivery/retention.py)."""
    return retention_policy.retention_apply()


@shared_task
def bounces_poll() -> dict[str, int]:
    """Beat, every MONITOR_BOUNCE_POLL_SECONDS when MONITOR_BOUNCE_IMAP_URL is set: the
    delivery reports in the bounce mailbox (delivery/bounces.py)."""
    summary = bounces.imap_process(settings.BOUNCE_IMAP_URL)
    return {"read": summary.read, "counted": summary.counted, "kept": summary.kept}
