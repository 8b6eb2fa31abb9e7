"""Starting, pausing, resuming and cancelling an issue's delivery, and test sends: the
editor's actions. The engine behind them has a module per step: `preflight`,
`fanout`, `dispatch`, `claim`, `chunk` (with `lanes`, `rate` and `record`), `sweep`,
`progress`; the ways to send are in `transports`.

The database is the source of truth; the broker only says "look now"."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from delivery.chunk import CANCELLED_BEFORE_SENDING
from delivery.dispatch import dispatch, rewind
from delivery.fanout import analyze, fan_out
from delivery.models import Delivery, SendJob
from delivery.preflight import preflight
from delivery.rendering import RenderedIssue, sample_recipient
from delivery.transports import transport
from issues import services as editorial
from issues.models import Issue

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

log = logging.getLogger(__name__)

Status = Delivery.Status


class SendError(Exception):
    """A send that cannot start; nothing was changed."""


def broker_down_message(issue: Issue, exc: Exception) -> str:
    """What to say when a send started (or resumed) and its first tasks could not be
    queued: its rows are written, and the sweeper hands them out once the broker
    answers (delivery/sweep.py)."""
    return (
        f"{issue}: the send is on and its messages are queued, but the broker "
        f"(CELERY_BROKER_URL) does not answer ({exc}); once it does, beat's sweeper "
        "hands them out."
    )


@dataclass(frozen=True)
class StartResult:
    job: SendJob
    created: bool
    message: str


def send_start(*, issue: Issue, by: AbstractBaseUser | None = None) -> StartResult:
    """Start delivering an approved or scheduled issue. Starting it again, or an issue
    already sending or sent, changes nothing and says so."""
    issue.refresh_from_db()
    existing = SendJob.objects.filter(issue=issue).first()
    if existing is not None or issue.status in (Issue.Status.SENDING, Issue.Status.SENT):
        return StartResult(
            existing,
            False,
            f"{issue} is already {issue.get_status_display().lower()}; nothing changed.",
        )
    failing = [c for c in preflight(issue) if not c.ok]
    if failing:
        raise SendError("Preflight failed: " + " ".join(c.detail for c in failing))
    try:
        with transaction.atomic():
            editorial.issue_start_sending(issue=issue, by=by)
            publication = issue.publication
            job = SendJob.objects.create(
                issue=issue,
                started_by=by,
                track_opens=publication.track_opens,
                track_clicks=publication.track_clicks,
            )
            job.audience, job.first_id, job.last_id = fan_out(issue)
            job.cursor = (job.first_id or 1) - 1
            job.save(update_fields=["audience", "first_id", "last_id", "cursor"])
            transaction.on_commit(analyze)
            transaction.on_commit(lambda: dispatch(issue_id=issue.pk))
    except editorial.WorkflowError as exc:
        raise SendError(str(exc)) from exc
    log.info("send started: %s to %d subscribers", issue, job.audience)
    return StartResult(job, True, f"Sending {issue} to {job.audience} subscribers.")


def send_pause(*, issue: Issue) -> bool:
    """Stop handing out chunks; a chunk in flight stops before its next step and gives
    its unsent rows back to the queue. Returns whether it changed."""
    return bool(
        SendJob.objects.filter(issue=issue, state=SendJob.State.RUNNING).update(
            state=SendJob.State.PAUSED
        )
    )


def send_resume(*, issue: Issue) -> bool:
    with transaction.atomic():
        changed = SendJob.objects.filter(issue=issue, state=SendJob.State.PAUSED).update(
            state=SendJob.State.RUNNING, progressed_at=timezone.now()
        )
        if changed:
            # Rows handed out before the pause lost their tasks' attention: hand out anew.
            rewind(issue.pk)
            Delivery.objects.filter(issue=issue, status=Status.QUEUED).update(enqueued_at=None)
            transaction.on_commit(lambda: dispatch(issue_id=issue.pk))
    return bool(changed)


def send_cancel(*, issue: Issue, by: AbstractBaseUser | None = None, note: str = "") -> int:
    """Stop the send for good: queued rows are cancelled at once, and a chunk in flight
    cancels its unsent rows before its next step. Returns how many rows were cancelled
    here."""
    with transaction.atomic():
        SendJob.objects.filter(issue=issue).exclude(state=SendJob.State.DONE).update(
            state=SendJob.State.CANCELLED, finished_at=timezone.now()
        )
        cancelled = Delivery.objects.filter(issue=issue, status=Status.QUEUED).update(
            status=Status.CANCELLED, last_error=CANCELLED_BEFORE_SENDING, enqueued_at=None
        )
        editorial.issue_cancel(issue=issue, by=by, note=note)
    return cancelled


def send_test(*, issue: Issue, to: str) -> None:
    """Send one copy, marked as a test, to `to`; no delivery row, links are samples."""
    rendered = RenderedIssue(issue, test=True)
    recipient = sample_recipient(key=f"{issue.pk}.test", email=to, name="")
    with transport() as mailer:
        outcome = mailer.send(rendered, [(0, recipient)])
    if not outcome.sent:
        reason = next(iter({**outcome.failed, **outcome.retry}.values()), "unknown error")
        raise SendError(f"The test message to {to} was not sent: {reason}")
