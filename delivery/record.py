"""Recording what happened to the rows of a chunk, step by step, with no transaction
open across the network: sent (with the ESP's message id), retried later with backoff,
or failed with the reason. Each record moves the send's progress on (`health`)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from delivery import health, policy
from delivery.models import Delivery, MessageId
from delivery.transports import Outcome
from monitor_site.retry import backoff

Status = Delivery.Status


def outcomes_record(
    issue_id: int, mine, outcome: Outcome, attempts: dict[int, int], held: set[int]
) -> None:
    """Write the outcome of every row of a chunk, touching only rows we still hold
    (`held`: the ids not recorded yet). All of them, or a run of them in id order (the
    first batch call of a chunk), need no list of ids: rows already recorded no longer
    carry the claim.

    Each statement commits on its own, the ESP's message ids first. A worker killed
    midway leaves the step's other rows claimed, as if it had died before recording
    them (they are sent again once the lease runs out, as they would be had it died a
    moment earlier), and never a row marked sent whose message id is not indexed. A
    transaction would add two round trips to the database (BEGIN, COMMIT) to each step."""

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
    message_ids_record(issue_id=issue_id, sent_by_id=sent_by_id)
    singles = []
    for message_id, ids in sent_by_id.items():
        if message_id and len(ids) == 1:
            singles.append(Delivery(id=ids[0], esp_message_id=message_id))
            continue
        shared = {"esp_message_id": message_id} if message_id else {}
        rows(ids).update(status=Status.SENT, sent_at=now, last_error="", **shared, **final)
    if singles:
        rows([row.id for row in singles]).update(
            status=Status.SENT, sent_at=now, last_error="", **final
        )
        Delivery.objects.bulk_update(singles, ["esp_message_id"], batch_size=500)
    for reason, ids in failed_by_reason.items():
        rows(ids).update(status=Status.FAILED, last_error=reason, **final)
    # A recipient the relay refused for good at RCPT bounced, as a delivery report says.
    policy.refusals_record(refused={i: r for i, r in outcome.refused.items() if i in held})
    for delivery_id, error in outcome.retry.items():
        if attempts[delivery_id] >= settings.DELIVERY_MAX_ATTEMPTS:
            mine.filter(id=delivery_id).update(
                status=Status.FAILED,
                last_error=f"Gave up after {attempts[delivery_id]} attempts: {error}",
                **final,
            )
        else:
            mine.filter(id=delivery_id).update(
                status=Status.QUEUED,
                last_error=error,
                next_attempt_at=now + timedelta(seconds=backoff(attempts[delivery_id])),
                **final,
            )
    held.difference_update(outcome.sent, outcome.failed, outcome.retry)
    health.progress_record(issue_id=issue_id)


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
