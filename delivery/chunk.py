"""Sending one chunk: its rows claimed (`claim`), the messages sent through several
connections at once (`lanes`) with no transaction open, and every row's outcome
recorded (`record`) as the chunk goes, at least every RECORD_EVERY messages or
RECORD_SECONDS. The step loop (`_send`) has one place between steps, where the chunk
takes its rate-limit slots and renews its lease."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F

from delivery.claim import Claim, rows_claim
from delivery.dispatch import chunk_size, dispatch, finish_if_done, wake_when_due
from delivery.lanes import Lanes
from delivery.models import Delivery, SendJob
from delivery.rate import reserve
from delivery.record import outcomes_record, with_reconnect
from delivery.rendering import Recipient, RenderedIssue, rendered_issue
from delivery.transports import Batch, Outcome, names_needed, transport
from issues.models import Issue
from monitor_site.retry import SendFailure
from subscriptions.tokens import FOOTER_PREFERENCES, UNSUBSCRIBE, url_maker

Status = Delivery.Status
# Outcomes are recorded at least this often, so that a worker killed mid-chunk leaves
# about this many messages sent and unrecorded (sent again) per worker process.
RECORD_EVERY = 100
RECORD_SECONDS = 1.0
NO_LANE_LEFT = "No connection to the mail system was left to send it."
CANCELLED_BEFORE_SENDING = "Cancelled before sending."
LOST = "lost"  # what `_send` says when the chunk no longer holds all its rows
Lost = Callable[[], None]  # what to do when the database is found away


@dataclass
class ChunkResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    given_back: int = 0  # claimed, unsent, given back on a pause or a cancel


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
        claimed = _send_claimed(job.issue, lo, hi, size, result)
        if result.given_back:
            return result
        if claimed < size or hi - lo < size:
            break
    if not dispatch(issue_id=issue_id, chunks=1, size=size) and not finish_if_done(
        issue_id=issue_id
    ):
        wake_when_due(issue_id)
    return result


def look_again(*, issue_id: int) -> int:
    """Hand out what is due of the issue; with nothing to hand out, finish it, or plan
    a look for when its first retry falls due. Returns the number of tasks enqueued."""
    handed = dispatch(issue_id=issue_id)
    if not handed and not finish_if_done(issue_id=issue_id):
        wake_when_due(issue_id)
    return handed


def _send_claimed(issue: Issue, lo: int, hi: int, size: int, result: ChunkResult) -> int:
    """Claim up to `size` rows (a chunk) in [lo, hi], send them and record the outcome.
    Returns how many rows were claimed (0: nothing left to do)."""
    rendered = rendered_issue(issue)
    claim = rows_claim(issue_id=issue.pk, lo=lo, hi=hi, size=size, names=names_needed(rendered))
    if claim is None:
        return 0
    result.claimed += claim.claimed
    result.skipped += claim.skipped
    unsubscribe = url_maker(UNSUBSCRIBE, "unsubscribe")
    preferences = url_maker(FOOTER_PREFERENCES, "preferences")
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
        for delivery_id, email, _, subscriber_id, subscription_id, name, format in claim.rows
    ]
    if batch:
        attempts = {row[0]: row[2] for row in claim.rows}
        held = {delivery_id for delivery_id, _ in batch}
        outcome, state = _send(
            issue,
            rendered,
            batch,
            renew=lambda lost: with_reconnect(claim.renew, on_lost=lost) >= len(held),
            record=lambda part, lost: outcomes_record(
                issue.pk, claim.mine, part, attempts, held, on_lost=lost
            ),
            state=lambda lost: with_reconnect(lambda: job_state(issue.pk), on_lost=lost),
        )
        result.sent += len(outcome.sent)
        result.retried += len(outcome.retry)
        result.failed += len(outcome.failed)
        if state != SendJob.State.RUNNING:
            result.given_back = rows_give_back(claim, state)
    return claim.claimed


def job_state(issue_id: int) -> str | None:
    """The send's state as it is now (an editor may have paused or cancelled it)."""
    return SendJob.objects.filter(issue_id=issue_id).values_list("state", flat=True).first()


def rows_give_back(claim: Claim, state: str | None) -> int:
    """The rows of a paused or cancelled send (or one whose rows were taken back) that
    this chunk claimed and did not send: cancelled, or queued again with their attempt
    back. Returns how many."""
    unsent = claim.mine.filter(status=Status.SENDING)
    free = {"claim": None, "lease_until": None, "enqueued_at": None}
    if state != SendJob.State.CANCELLED:
        return unsent.update(status=Status.QUEUED, attempts=F("attempts") - 1, **free)
    return unsent.update(
        status=Status.CANCELLED,
        attempts=F("attempts") - 1,
        last_error=CANCELLED_BEFORE_SENDING,
        **free,
    )


def _steps(units: list[Batch], size: int) -> Iterator[list[Batch]]:
    """Units of work in steps of up to `size` messages (at least one unit each)."""
    step: list[Batch] = []
    count = 0
    for unit in units:
        if step and count + len(unit) > size:
            yield step
            step, count = [], 0
        step.append(unit)
        count += len(unit)
    if step:
        yield step


def _send(
    issue: Issue,
    rendered: RenderedIssue,
    batch: list[tuple[int, Recipient]],
    *,
    renew: Callable[[Lost], bool],
    record: Callable[[Outcome, Lost], None],
    state: Callable[[Lost], str | None],
) -> tuple[Outcome, str | None]:
    """Send a claimed chunk through several transports at once (`lanes`), with no
    transaction open, recording outcomes as they come: at least every RECORD_EVERY
    messages (a transport's step, if larger: an ESP's batch goes whole or not at all)
    or RECORD_SECONDS, so that a worker killed mid-chunk leaves about that many
    messages sent and unrecorded, to be sent again.

    Between steps is the one place where the chunk waits for its rate-limit slots,
    renews its lease (a third of the lease at most apart) and reads the send's state
    (as well as at each record): once it is no longer running, no lane takes more, and
    the send's state is returned with what was sent (the rows not sent are the
    caller's to give back).

    Each of those three is given what to do when the database is found away (`Lost`):
    no lane takes more until it is back, so that what was sent and not recorded stays
    within a step if it does not come back in time."""
    rate = issue.publication.messages_per_second
    mailer = transport()
    units = mailer.units(batch)
    step = mailer.step
    every = max(mailer.step, RECORD_EVERY)
    if rate:
        step = max(1, min(step, rate))
    total = Outcome()
    pending = _steps(units, step)
    current = next(pending, None)
    slot = 0.0  # when (epoch seconds) the current step may go, once reserved
    renewed = recorded = checked = time.time()
    lease = settings.DELIVERY_LEASE_SECONDS
    now_state: str | None = SendJob.State.RUNNING

    parked: list[Batch] = []

    def park() -> None:
        parked.extend(lanes.take_back())

    def unpark() -> None:
        if parked:
            lanes.hand(parked)
            parked.clear()

    def stopped() -> bool:
        """Read the send's state again; once it is not running, stop the lanes."""
        nonlocal now_state, current, checked
        checked = time.time()
        now_state = state(park)
        unpark()
        if now_state == SendJob.State.RUNNING:
            return False
        lanes.stop()
        current = None
        return True

    def record_now() -> None:
        part = lanes.outcomes()
        if part:
            record(part, park)
            unpark()
            total.merge(part)

    with Lanes(transport, min(mailer.lanes, len(units)), rendered, every=every) as lanes:
        while True:
            now = time.time()
            if now - renewed > lease / 3:
                renewed = now
                holding = renew(park)
                unpark()
                if not holding and current is not None:
                    # The sweeper took rows back (the database was away for longer
                    # than the lease): others send them now.
                    lanes.stop()
                    current, now_state = None, LOST
            # the send's state is read once per step, before its slots are taken
            if current is not None and lanes.hungry() and (slot or not stopped()):
                if rate and not slot:
                    slot = reserve(issue.publication_id, rate, sum(map(len, current)))
                if time.time() >= slot:
                    lanes.hand(current)
                    current, slot = next(pending, None), 0.0
                    if current is None:
                        lanes.close()
                    continue
            done = lanes.done()
            if done or now - recorded >= RECORD_SECONDS or lanes.unrecorded() >= every:
                record_now()
                recorded = now
                if current is not None and now - checked >= RECORD_SECONDS:
                    stopped()
            if done:
                # Every lane ended (its connection lost) before the chunk was sent.
                left = lanes.untaken()
                if current is not None:
                    left += (i for unit in current for i, _ in unit)
                    left += (i for steps in pending for unit in steps for i, _ in unit)
                if left:
                    part = Outcome().fail(left, SendFailure(NO_LANE_LEFT, permanent=False))
                    record(part, park)
                    total.merge(part)
                break
            timeout = RECORD_SECONDS - (now - recorded)
            if slot:
                timeout = min(timeout, slot - time.time())
            lanes.wait(timeout, for_work=current is not None and not slot)
    record_now()
    if lanes.error is not None:
        raise lanes.error
    return total, now_state
