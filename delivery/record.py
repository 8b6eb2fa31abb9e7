"""Recording what happened to the rows of a chunk, step by step, with no transaction
open across the network: sent (with the ESP's message id), retried later with backoff,
or failed with the reason. Each record moves the send's progress on (`health`)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone

from delivery import health, policy
from delivery.dispatch import wake_at
from delivery.models import Delivery, MessageId
from delivery.transports import Outcome
from monitor_site.retry import backoff

Status = Delivery.Status
log = logging.getLogger(__name__)
T = TypeVar("T")
# Errors of a lost or refused database connection, after which a new one may work.
DATABASE_LOST = (OperationalError, InterfaceError)


def with_reconnect(
    write: Callable[[], T],
    *,
    seconds: float | None = None,
    on_lost: Callable[[], object] | None = None,
) -> T:
    """Run `write` (a few statements each committing on its own, safe to run again),
    opening a new database connection and trying again while the database is away,
    for up to `seconds` (half the lease: the rows are still ours); then the error
    goes up. `on_lost` is called once, when the database is first found away."""
    if seconds is None:
        seconds = settings.DELIVERY_LEASE_SECONDS / 2
    deadline = time.monotonic() + seconds
    pause = 0.1
    while True:
        try:
            return write()
        except DATABASE_LOST as exc:
            if time.monotonic() + pause > deadline or connection.in_atomic_block:
                raise
            if on_lost is not None:
                on_lost()
                on_lost = None
            log.warning("database lost (%s); trying again in %.1f s", exc, pause)
            with contextlib.suppress(DatabaseError):
                connection.close()  # the next statement opens a new one
            time.sleep(pause)
            pause = min(1.0, pause * 2)


def outcomes_record(
    issue_id: int,
    mine,
    outcome: Outcome,
    attempts: dict[int, int],
    held: set[int],
    *,
    on_lost: Callable[[], object] | None = None,
) -> None:
    """Record a step's outcomes (`_record`), through a lost database connection too
    (`with_reconnect`)."""
    indexed: list[bool] = []
    with_reconnect(
        lambda: _record(issue_id, mine, outcome, attempts, held, indexed), on_lost=on_lost
    )


def _record(
    issue_id: int,
    mine,
    outcome: Outcome,
    attempts: dict[int, int],
    held: set[int],
    indexed: list[bool],
) -> None:
    """Write the outcome of every row of a chunk, touching only rows we still hold
    (`held`: the ids not recorded yet). All of them, or a run of them in id order (the
    first batch call of a chunk), need no list of ids: rows already recorded no longer
    carry the claim.

    Each statement commits on its own, the ESP's message ids first. A worker killed
    midway leaves the step's other rows claimed, as if it had died before recording
    them (they are sent again once the lease runs out, as they would be had it died a
    moment earlier), and never a row marked sent whose message id is not indexed. A
    transaction would add two round trips to the database (BEGIN, COMMIT) to each step.
    Run again after an error, it writes only what the rows still holding the claim lack
    (`indexed`: whether the message ids are in already).

    A row sent keeps its attempts and the last error it met before; the retries of the
    step plan a look at the issue for when the first of them falls due."""

    def rows(ids: list[int]):
        lo, hi = min(ids), max(ids)
        if held.issuperset(ids) and sum(lo <= i <= hi for i in held) == len(ids):
            return mine if len(ids) == len(held) else mine.filter(id__gte=lo, id__lte=hi)
        return mine.filter(id__in=ids)

    now = timezone.now()
    final = {"claim": None, "lease_until": None, "enqueued_at": None}
    # One UPDATE per distinct message id or reason, not per row: a batch API gives one
    # id to the whole call (Mailgun, SparkPost), and a refused call one reason to all.
    sent_by_id: dict[str, list[int]] = {}
    for delivery_id, message_id in outcome.sent.items():
        sent_by_id.setdefault(message_id[:200], []).append(delivery_id)
    failed_by_reason: dict[str, list[int]] = {}
    for delivery_id, reason in outcome.failed.items():
        failed_by_reason.setdefault(reason, []).append(delivery_id)
    if not indexed:
        message_ids_record(issue_id=issue_id, sent_by_id=sent_by_id)
        indexed.append(True)
    singles = []
    for message_id, ids in sent_by_id.items():
        if message_id and len(ids) == 1:
            singles.append(Delivery(id=ids[0], esp_message_id=message_id))
            continue
        shared = {"esp_message_id": message_id} if message_id else {}
        rows(ids).update(status=Status.SENT, sent_at=now, **shared, **final)
    if singles:
        rows([row.id for row in singles]).update(status=Status.SENT, sent_at=now, **final)
        Delivery.objects.bulk_update(singles, ["esp_message_id"], batch_size=500)
    for reason, ids in failed_by_reason.items():
        rows(ids).update(status=Status.FAILED, last_error=reason, **final)
    # A recipient the relay refused for good at RCPT bounced, as a delivery report says.
    policy.refusals_record(refused={i: r for i, r in outcome.refused.items() if i in held})
    first_due = None
    for delivery_id, error in outcome.retry.items():
        if attempts[delivery_id] >= settings.DELIVERY_MAX_ATTEMPTS:
            mine.filter(id=delivery_id).update(
                status=Status.FAILED,
                last_error=f"Gave up after {attempts[delivery_id]} attempts: {error}",
                **final,
            )
        else:
            due = now + timedelta(seconds=backoff(attempts[delivery_id]))
            if mine.filter(id=delivery_id).update(
                status=Status.QUEUED, last_error=error, next_attempt_at=due, **final
            ):
                first_due = due if first_due is None else min(first_due, due)
    held.difference_update(outcome.sent, outcome.failed, outcome.retry)
    health.progress_record(issue_id=issue_id)
    if first_due is not None:
        wake_at(issue_id, first_due)


def message_ids_record(*, issue_id: int, sent_by_id: dict[str, list[int]]) -> None:
    """Index the ESP's message ids of sent deliveries (by id): a batch call's id once
    for the issue, a single message's with its delivery."""
    MessageId.objects.bulk_create(
        MessageId(
            esp_message_id=message_id,
            issue_id=issue_id,
            delivery_id=ids[0] if len(ids) == 1 else None,
        )
        for message_id, ids in sent_by_id.items()
        if message_id
    )
