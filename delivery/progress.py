"""How far a send has got: its rows counted by status, once, for the admin's progress bar,
`send_issue --wait`, the report and the engine itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from delivery.models import Delivery, SendJob
from issues.models import Issue

Status = Delivery.Status
# The rate shown while sending is measured over this window, so that it follows a pause,
# a resume or a slow relay within seconds instead of averaging since the start.
RATE_WINDOW_SECONDS = 30


def status_counts(*, issue_id: int, since: datetime | None = None) -> tuple[dict[str, int], int]:
    """The issue's rows by status (every status present), and how many were sent since
    `since`: one query."""
    counts = {s: 0 for s in Status.values}
    recent = 0
    extra = {"recent": Count("id", filter=Q(sent_at__gte=since))} if since else {}
    rows = (
        Delivery.objects.filter(issue_id=issue_id)
        .order_by()
        .values("status")
        .annotate(n=Count("id"), **extra)
    )
    for row in rows:
        counts[row["status"]] = row["n"]
        recent += row.get("recent", 0)
    return counts, recent


def progress(issue: Issue) -> dict[str, int]:
    """Counts of the issue's delivery rows by status, plus the total."""
    counts, _ = status_counts(issue_id=issue.pk)
    return {**counts, "total": sum(counts.values())}


@dataclass(frozen=True)
class Progress:
    state: str  # the SendJob state, or "none" before a send
    counts: dict[str, int]
    total: int
    done: int  # rows in a final state (sent, failed, skipped, cancelled)
    rate: float  # messages per second
    eta_seconds: int | None
    finished: bool

    @property
    def percent(self) -> float:
        return 100.0 if not self.total else round(100 * self.done / self.total, 1)

    def as_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "finished": self.finished,
            "counts": self.counts,
            "total": self.total,
            "done": self.done,
            "percent": self.percent,
            "rate": round(self.rate, 1),
            "eta_seconds": self.eta_seconds,
        }


def progress_snapshot(*, job: SendJob | None, now: datetime | None = None) -> Progress:
    """Counts by status, the sending rate and the time left, in one query."""
    if job is None:
        return Progress("none", {s: 0 for s in Status.values}, 0, 0, 0.0, None, False)
    now = now or timezone.now()
    window = max(1.0, min(RATE_WINDOW_SECONDS, (now - job.started_at).total_seconds()))
    counts, recent = status_counts(issue_id=job.issue_id, since=now - timedelta(seconds=window))
    total = sum(counts.values())
    done = sum(counts[s] for s in Delivery.FINAL)
    finished = job.state in (SendJob.State.DONE, SendJob.State.CANCELLED)
    if finished:
        elapsed = ((job.finished_at or now) - job.started_at).total_seconds()
        rate = counts[Status.SENT] / elapsed if elapsed > 0 else 0.0
        eta = None
    else:
        rate = recent / window if job.state == SendJob.State.RUNNING else 0.0
        eta = round((total - done) / rate) if rate > 0 else None
    return Progress(job.state, counts, total, done, rate, eta, finished)
