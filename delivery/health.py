"""Whether sends are moving: the one rule behind /healthz's `delivery` part, the warning
on an issue's admin page and `send_issue --wait` giving up.

A send is *stalled* when its SendJob is running, it has work a worker should be doing
(rows in `sending`, or queued rows that are due: never tried, or due for a retry for
longer than the threshold), and none of its steps has recorded an outcome for longer
than the threshold, MONITOR_DELIVERY_STALL_SECONDS. The signal is
`SendJob.progressed_at`: set when the send starts or resumes, and moved on by
`progress_record` whenever a step's outcomes are recorded, at most every
PROGRESS_EVERY seconds: a conditional UPDATE that matches nothing in between, so that
workers do not queue on the job's row. Only the rows of a send whose progress is
that old are looked at, and what they say is kept a minute (a send just come due for
a retry shows as stalled up to a minute late).

A scheduled send is *overdue* when it has not started a threshold after its time: the
sweeper that starts it is not running (beat, or a worker consuming `default`), or its
preflight fails.

Apart from that, nothing of a send goes out while no worker consumes the `send` queue.
The workers are asked through Celery's remote control (`active_queues`, which works on
Redis and on the filesystem broker alike), and the answer is kept in the cache for
CONSUMERS_TTL seconds, or EMPTY_TTL when no worker consumes `send`, so that a worker
just started shows soon. A missing consumer fails /healthz while a send is running or a
scheduled one is due; with nothing to send it shows in the details only, so that a
worker restarted between sends does not fail the web processes' health check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from delivery.models import Delivery, SendJob
from issues.models import Issue
from monitor_site.celery import app as celery_app
from monitor_site.health import Health

log = logging.getLogger(__name__)
Status = Delivery.Status

PROGRESS_EVERY = 5  # seconds between two writes of a job's progress
CONSUMERS_KEY = "delivery-queue-consumers"
CONSUMERS_TTL = 30
EMPTY_TTL = 5
INSPECT_TIMEOUT = 1.0  # seconds the workers have to answer
DUE_WORK_TTL = 60
WORKER_COMMAND = "celery -A monitor_site worker"


def send_queue() -> str:
    return settings.CELERY_TASK_ROUTES["delivery.tasks.send_chunk"]["queue"]


def progress_record(*, issue_id: int) -> None:
    """Note that a step of the issue's send recorded outcomes. The job's row is written
    (and locked) only if its progress is older than PROGRESS_EVERY seconds."""
    now = timezone.now()
    SendJob.objects.filter(
        issue_id=issue_id, progressed_at__lt=now - timedelta(seconds=PROGRESS_EVERY)
    ).update(progressed_at=now)


def _cutoff(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.DELIVERY_STALL_SECONDS)


def _keep(key: str, value: object, ttl: int) -> None:
    cache.set(key, (value, timezone.now().timestamp() + ttl), ttl)


def _cached(key: str) -> object | None:
    """What `_keep` stored, until it expires by our clock: the cache's own expiry runs on
    its server's clock (Redis), which the tests' clock cannot move."""
    kept = cache.get(key)
    if kept is None or kept[1] <= timezone.now().timestamp():
        return None
    return kept[0]


def _has_due_work(job: SendJob, cutoff: datetime) -> bool:
    """Rows of the send a worker should be busy with: in flight, never tried, or due for
    a retry since before `cutoff` (one due more recently is the sweeper's to hand out).

    Where no row is due (a send waiting for its retries) the query reads all of the
    send's rows, so the answer is kept DUE_WORK_TTL seconds for as long as the send's
    progress stays where it is."""
    if job.first_id is None:
        return False
    key = f"delivery-due-work-{job.pk}-{job.progressed_at.timestamp()}"
    found = _cached(key)
    if found is None:
        due = (
            Q(status=Status.SENDING)
            | Q(status=Status.QUEUED, next_attempt_at__isnull=True)
            | Q(status=Status.QUEUED, next_attempt_at__lt=cutoff)
        )
        rows = Delivery.objects.filter(
            due, issue_id=job.issue_id, id__gte=job.first_id, id__lte=job.last_id
        )
        found = rows.order_by("-id").values_list("id", flat=True).first() is not None
        _keep(key, found, DUE_WORK_TTL)
    return found


def is_stalled(job: SendJob, *, now: datetime | None = None) -> bool:
    """The rule of the module's docstring, for one send."""
    cutoff = _cutoff(now or timezone.now())
    return (
        job.state == SendJob.State.RUNNING
        and job.progressed_at < cutoff
        and _has_due_work(job, cutoff)
    )


def stalled_jobs(*, now: datetime | None = None) -> list[SendJob]:
    cutoff = _cutoff(now or timezone.now())
    candidates = SendJob.objects.filter(
        state=SendJob.State.RUNNING, progressed_at__lt=cutoff
    ).select_related("issue__publication", "issue__volume")
    return [job for job in candidates if _has_due_work(job, cutoff)]


def is_overdue(issue: Issue, *, now: datetime | None = None) -> bool:
    return (
        issue.status == Issue.Status.SCHEDULED
        and issue.scheduled_at is not None
        and issue.scheduled_at < _cutoff(now or timezone.now())
    )


def overdue_issues(*, now: datetime | None = None) -> list[Issue]:
    return list(
        Issue.objects.filter(
            status=Issue.Status.SCHEDULED, scheduled_at__lt=_cutoff(now or timezone.now())
        ).select_related("publication", "volume")
    )


def queue_consumers() -> dict[str, list[str]] | None:
    """The workers consuming each queue, by queue name, as they answer Celery's remote
    control; None when they could not be asked."""
    consumers = _cached(CONSUMERS_KEY)
    if consumers is not None:
        return consumers
    try:
        replies = celery_app.control.inspect(timeout=INSPECT_TIMEOUT).active_queues() or {}
    except Exception as exc:  # the broker's own failure is the broker check's to report
        log.warning("could not ask the workers which queues they consume: %s", exc)
        return None
    consumers = {queue.name: [] for queue in settings.CELERY_TASK_QUEUES}
    for worker, queues in sorted(replies.items()):
        for queue in queues:
            consumers.setdefault(queue["name"], []).append(worker)
    _keep(CONSUMERS_KEY, consumers, CONSUMERS_TTL if consumers[send_queue()] else EMPTY_TTL)
    return consumers


def send_consumers() -> list[str] | None:
    consumers = queue_consumers()
    return None if consumers is None else consumers.get(send_queue(), [])


def _duration(seconds: float) -> str:
    n, unit = round(seconds), "second"
    if n >= 7200:
        n, unit = round(seconds / 3600), "hour"
    elif n >= 120:
        n, unit = round(seconds / 60), "minute"
    return f"{n} {unit}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class SendHealth:
    """What is wrong with one send, if anything."""

    stalled_for: float | None  # seconds since its last progress, when it is stalled
    consumers: list[str] | None  # workers consuming `send`; None: not asked, or unknown

    @property
    def stalled(self) -> bool:
        return self.stalled_for is not None

    @property
    def message(self) -> str | None:
        start = f"start one with `{WORKER_COMMAND}`"
        if self.stalled_for is not None:
            gone = f"No message of this send has gone out for {_duration(self.stalled_for)}"
            if self.consumers == []:
                return f"{gone}, and no worker consumes the send queue: {start}."
            return (
                f"{gone}; is a worker running `{WORKER_COMMAND}`, "
                "and `celery -A monitor_site beat` beside it?"
            )
        if self.consumers == []:
            return f"No worker consumes the send queue, so nothing of this send goes out: {start}."
        return None


def send_health(*, job: SendJob | None, now: datetime | None = None) -> SendHealth:
    """Whether one send is stalled and who consumes `send`; a send that is not running
    (paused, cancelled, done) has nothing wrong with it."""
    if job is None or job.state != SendJob.State.RUNNING:
        return SendHealth(None, None)
    now = now or timezone.now()
    stalled_for = (now - job.progressed_at).total_seconds() if is_stalled(job, now=now) else None
    return SendHealth(stalled_for, send_consumers())


def issue_warning(*, issue: Issue, job: SendJob | None) -> str | None:
    """The warning an issue's admin page shows: its send stalled, no worker for it, or
    its scheduled time long past without a start."""
    now = timezone.now()
    if is_overdue(issue, now=now):
        late = _duration((now - issue.scheduled_at).total_seconds())
        return (
            f"This issue was due to go out {late} ago and has not started; is "
            f"`celery -A monitor_site beat` running, with a worker (`{WORKER_COMMAND}`)?"
        )
    return send_health(job=job, now=now).message


def healthz(details: bool) -> Health:
    """/healthz's `delivery` part: failing while a send is stalled, a scheduled one is
    overdue, or no worker consumes `send` while a send is running or due."""
    now = timezone.now()
    stalled = stalled_jobs(now=now)
    overdue = overdue_issues(now=now)
    needed = (
        SendJob.objects.filter(state=SendJob.State.RUNNING).exists()
        or Issue.objects.filter(status=Issue.Status.SCHEDULED, scheduled_at__lte=now).exists()
    )
    consumers = queue_consumers() if needed or details else None
    unserved = needed and consumers is not None and not consumers.get(send_queue())
    ok = not (stalled or overdue or unserved)
    if not details:
        return Health(ok)
    return Health(
        ok,
        {
            "stall_seconds": settings.DELIVERY_STALL_SECONDS,
            "queues": consumers,
            "send_needed": needed,
            "stalled": [
                {
                    "issue": str(job.issue),
                    "issue_id": job.issue_id,
                    "progressed_at": job.progressed_at.isoformat(),
                    "message": SendHealth(
                        (now - job.progressed_at).total_seconds(),
                        None if consumers is None else consumers.get(send_queue(), []),
                    ).message,
                }
                for job in stalled
            ],
            "overdue": [
                {
                    "issue": str(issue),
                    "issue_id": issue.pk,
                    "scheduled_at": issue.scheduled_at.isoformat(),
                }
                for issue in overdue
            ],
        },
    )
