"""Delivering an issue: start, hand out chunks, send them, record, recover.

The database is the source of truth; the broker only says "look now".

* `send_start` moves the issue to `sending` and snapshots the audience into Delivery
  rows with one INSERT … SELECT, in the same transaction.
* `dispatch` hands out chunks of queued rows to `send_chunk` tasks, a window at a
  time; each finished chunk hands out the next one.
* `chunk_send` claims its rows with a conditional UPDATE and a lease, re-checks each
  subscription, sends the chunk over one connection with no transaction open, then
  records every row's outcome.
* `sweep` (beat) releases rows whose lease expired (a killed worker), hands out again
  rows whose task the broker lost, starts due scheduled sends and finishes issues.
"""

from __future__ import annotations

import html
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import Resolver404, resolve
from django.utils import timezone

from delivery import health
from delivery.models import Delivery, MessageId, RateSlot, SendJob
from delivery.rendering import HTML_LIMIT, Recipient, RenderedIssue, rendered_issue
from delivery.transports import Outcome, names_needed, transport
from issues import services as editorial
from issues.models import Issue
from subscriptions.models import Subscriber, Subscription, Suppression
from subscriptions.tokens import FOOTER_PREFERENCES, UNSUBSCRIBE, url_maker

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

log = logging.getLogger(__name__)
Status = Delivery.Status


class SendError(Exception):
    """A send that cannot start; nothing was changed."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def preflight(issue: Issue) -> list[Check]:
    """What must hold before an issue goes out (SPEC §6)."""
    articles = issue.articles.count()
    if not articles:
        return [Check("articles", False, "The issue has no article.")]
    rendered = RenderedIssue(issue)
    size = rendered.html_size()
    sample = Recipient(
        delivery_key="0.0",
        email="reader@example.org",
        name="Reader",
        unsubscribe_url=f"{settings.SITE_URL}/unsubscribe/sample/",
        preferences_url=f"{settings.SITE_URL}/preferences/sample/",
    )
    raw = rendered.as_bytes(sample)
    return [
        Check("articles", True, f"{articles} article{'s' if articles != 1 else ''}."),
        Check(
            "html_size",
            size < HTML_LIMIT,
            f"HTML is {size / 1024:.1f} KB (must stay under {HTML_LIMIT // 1024} KB).",
        ),
        Check(
            "text_part",
            b"Content-Type: text/plain" in raw and bool(rendered.text_source.strip()),
            "Plain-text part present.",
        ),
        Check(
            "unsubscribe_link",
            "@@MONITOR_UNSUBSCRIBE_URL@@" in rendered.html_source
            and "@@MONITOR_UNSUBSCRIBE_URL@@" in rendered.text_source
            and b"List-Unsubscribe: <" in raw,
            "Unsubscribe link in the body and the List-Unsubscribe header.",
        ),
        archive_links_check(issue),
    ]


@dataclass(frozen=True)
class StartResult:
    job: SendJob
    created: bool
    message: str


def _fan_out(issue: Issue) -> tuple[int, int | None, int | None]:
    """Create the Delivery rows of the audience in one statement: active subscriptions
    of the publication whose address is not suppressed. Returns how many, and the
    first and last id. It runs once per issue, in the transaction that creates the
    issue's SendJob, whose one-per-issue constraint makes a second run fail whole; the
    unique pair would too."""
    d, s, sub, sup = (
        Delivery._meta.db_table,
        Subscription._meta.db_table,
        Subscriber._meta.db_table,
        Suppression._meta.db_table,
    )
    # NOT IN builds one hash of the suppressed addresses' keyed hashes (an erased
    # reader's entry has nothing else); NOT EXISTS probed the suppression table once
    # per subscriber.
    insert = f"""
        INSERT INTO {d} (issue_id, subscriber_id, subscription_id, email, status, attempts,
                         esp_message_id, last_error, created_at)
        SELECT %s, s.subscriber_id, s.id, p.email, %s, 0, '', '', %s
        FROM {s} s JOIN {sub} p ON p.id = s.subscriber_id
        WHERE s.publication_id = %s AND s.status = %s
          AND p.email_hash NOT IN (SELECT x.email_hash FROM {sup} x WHERE x.lifted_at IS NULL)
    """  # noqa: S608 - table names come from the models, values are parameters
    params = [
        issue.pk,
        Status.QUEUED,
        timezone.now(),
        issue.publication_id,
        Subscription.Status.ACTIVE,
    ]
    with connection.cursor() as cursor:
        before = _last_id(cursor)
        cursor.execute(insert, params)
        count = cursor.rowcount
        # Ids only grow: the rows lie between the last id handed out before the insert
        # and the last one after it (with any other issue's rows created meanwhile).
        return (count, before, _last_id(cursor)) if count else (0, None, None)


def _last_id(cursor) -> int:
    """The last delivery id handed out so far (0 if none), without scanning the table."""
    table = Delivery._meta.db_table
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        cursor.execute(f"SELECT last_value FROM {cursor.fetchone()[0]}")  # noqa: S608
    else:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608
    return cursor.fetchone()[0]


# The columns the engine's queries filter on. Their statistics take a third of the time
# of the whole table's (8 against 21 to 28 ms for 10,000 rows: the addresses are the
# costly ones); autovacuum analyzes the rest later.
_PLANNED = ("id", "issue", "status", "next_attempt_at", "claim", "enqueued_at", "lease_until")


def _analyze() -> None:
    """Fresh planner statistics for the delivery table once a send has added its rows,
    so that the chunk queries of the first minute (before autovacuum would analyze
    it) scan the primary key ranges they name."""
    if connection.vendor == "postgresql":
        columns = ", ".join(Delivery._meta.get_field(name).column for name in _PLANNED)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Delivery._meta.db_table} ({columns})")


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
            job.audience, job.first_id, job.last_id = _fan_out(issue)
            job.cursor = (job.first_id or 1) - 1
            job.save(update_fields=["audience", "first_id", "last_id", "cursor"])
            transaction.on_commit(_analyze)
            transaction.on_commit(lambda: dispatch(issue_id=issue.pk))
    except editorial.WorkflowError as exc:
        raise SendError(str(exc)) from exc
    log.info("send started: %s to %d subscribers", issue, job.audience)
    return StartResult(job, True, f"Sending {issue} to {job.audience} subscribers.")


def _chunk_size(rate: int | None) -> int:
    size = settings.DELIVERY_CHUNK_SIZE
    # A rate-limited chunk must finish well within its lease.
    return max(1, min(size, rate * settings.DELIVERY_LEASE_SECONDS // 3)) if rate else size


def _due() -> Q:
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
            size = _chunk_size(rate[0]["publication__messages_per_second"])
        want = size * (chunks or settings.DELIVERY_WINDOW)
        now = timezone.now()
        queued = Delivery.objects.filter(issue_id=issue_id, status=Status.QUEUED).filter(_due())
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


def _rewind(issue_id: int) -> None:
    """Walk the issue's rows from the start again: whatever is still queued and due is
    handed out anew (after a pause, or when tasks were lost)."""
    SendJob.objects.filter(issue_id=issue_id, first_id__isnull=False).update(
        cursor=F("first_id") - 1
    )


def _backoff(attempts: int) -> timedelta:
    base = settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    delay = min(base, settings.DELIVERY_RETRY_MAX_SECONDS)
    return timedelta(seconds=delay * random.uniform(0.75, 1.25))


def _reserve(publication_id: int, rate: int, count: int) -> float:
    """Reserve `count` sending slots of a rate-limited publication, shared by every
    worker process; returns when (epoch seconds) the first may go."""
    with transaction.atomic():
        slot, _ = RateSlot.objects.select_for_update().get_or_create(publication_id=publication_id)
        start = max(time.time(), slot.next_at)
        slot.next_at = start + count / rate
        slot.save(update_fields=["next_at"])
    return start


@dataclass
class ChunkResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0


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
        size = _chunk_size(job.issue.publication.messages_per_second)
        if _send_claimed(job.issue, lo, hi, size, result) < size or hi - lo < size:
            break
    if not dispatch(issue_id=issue_id, chunks=1, size=size):
        finish_if_done(issue_id=issue_id)
    return result


def _send_claimed(issue: Issue, lo: int, hi: int, size: int, result: ChunkResult) -> int:
    """Claim up to `size` rows (a chunk) in [lo, hi], send them and record the outcome.
    Returns how many rows were claimed (0: nothing left to do)."""
    rate = issue.publication.messages_per_second
    token = uuid.uuid4()
    lease = timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    queued = Delivery.objects.filter(
        issue_id=issue.pk, id__gte=lo, id__lte=hi, status=Status.QUEUED
    ).filter(_due())
    if hi - lo >= size:  # one scan of the id range, up to its size-th claimable row
        last = Coalesce(Subquery(queued.order_by("id").values("id")[size - 1 : size]), Value(hi))
        queued = queued.filter(id__lte=last)
    claimed = queued.update(
        status=Status.SENDING,
        claim=token,
        lease_until=timezone.now() + lease,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return 0
    result.claimed += claimed
    rendered = rendered_issue(issue)
    mine = Delivery.objects.filter(issue_id=issue.pk, id__gte=lo, id__lte=hi, claim=token)
    rows = list(
        mine.annotate(
            suppressed=Exists(
                Suppression.objects.active().filter(email_hash=OuterRef("subscriber__email_hash"))
            )
        )
        .order_by("id")
        .values_list(
            "id",
            "email",
            "attempts",
            "subscriber_id",
            "subscription_id",
            # no join of the subscribers where no name is written
            "subscriber__name" if names_needed(rendered) else Value(""),
            "subscription__format",
            "subscription__status",
            "suppressed",
        )
    )
    # Someone who unsubscribed (or was suppressed) a second ago gets nothing.
    active = Subscription.Status.ACTIVE
    skipped = {row[0] for row in rows if row[8] or row[7] != active}
    if skipped:
        result.skipped += mine.filter(id__in=skipped).update(
            status=Status.SKIPPED,
            claim=None,
            lease_until=None,
            last_error="Unsubscribed or suppressed before sending.",
        )
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
        for delivery_id, email, _, subscriber_id, subscription_id, name, format, *_ in rows
        if delivery_id not in skipped
    ]
    if batch:
        attempts = {row[0]: row[2] for row in rows}
        held = {delivery_id for delivery_id, _ in batch}
        outcome = _send(
            issue,
            rendered,
            batch,
            rate=rate,
            renew=lambda: mine.update(lease_until=timezone.now() + lease),
            record=lambda part: _record(issue.pk, mine, part, attempts, held),
        )
        result.sent += len(outcome.sent)
        result.retried += len(outcome.retry)
        result.failed += len(outcome.failed)
    return claimed


def _send(
    issue: Issue,
    rendered: RenderedIssue,
    batch: list[tuple[int, Recipient]],
    *,
    rate: int | None,
    renew: Callable[[], object],
    record: Callable[[Outcome], None],
) -> Outcome:
    """Send with no transaction open, recording outcomes as it goes, so that a worker
    killed mid-chunk leaves at most one step of messages in doubt. A rate-limited
    publication goes a second's worth of messages at a time, renewing the lease; any
    other chunk renews it once a third of it has gone by (a slow server)."""
    total = Outcome()
    renewed = time.time()
    with transport() as mailer:
        step = min(mailer.record_every, rate) if rate else mailer.record_every
        for start in range(0, len(batch), step):
            part = batch[start : start + step]
            if rate:
                wait = _reserve(issue.publication_id, rate, len(part)) - time.time()
                if wait > 0:
                    time.sleep(wait)
            if rate or time.time() - renewed > settings.DELIVERY_LEASE_SECONDS / 3:
                renew()
                renewed = time.time()
            outcome = mailer.send(rendered, part)
            record(outcome)
            total.merge(outcome)
    return total


def _record(
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
                next_attempt_at=now + _backoff(attempts[delivery_id]),
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


def finish_if_done(*, issue_id: int) -> bool:
    """Mark the issue sent once every row is final. Returns whether it is done."""
    unfinished = Delivery.objects.filter(
        issue_id=issue_id, status__in=[Status.QUEUED, Status.SENDING]
    )
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


def release_expired_leases() -> int:
    """Rows claimed by a worker that died: back to the queue, or failed once they have
    used up their attempts. Only issues still being sent can have such rows."""
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
    # Due at once, they are handed out again like a retry.
    released = expired.update(
        status=Status.QUEUED, claim=None, lease_until=None, enqueued_at=None, next_attempt_at=now
    )
    return gave_up + released


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
        if not busy:
            _rewind(job.issue_id)
            dispatched += dispatch(issue_id=job.issue_id)
    return {
        "started": started,
        "released": released,
        "dispatched": dispatched,
        "finished": finished,
    }


def send_pause(*, issue: Issue) -> bool:
    """Stop handing out chunks; chunks in flight finish. Returns whether it changed."""
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
            _rewind(issue.pk)
            Delivery.objects.filter(issue=issue, status=Status.QUEUED).update(enqueued_at=None)
            transaction.on_commit(lambda: dispatch(issue_id=issue.pk))
    return bool(changed)


def send_cancel(*, issue: Issue, by: AbstractBaseUser | None = None, note: str = "") -> int:
    """Stop the send for good: queued rows are dropped (marked failed, "cancelled"),
    rows in flight finish. Returns how many rows were cancelled."""
    with transaction.atomic():
        SendJob.objects.filter(issue=issue).exclude(state=SendJob.State.DONE).update(
            state=SendJob.State.CANCELLED, finished_at=timezone.now()
        )
        cancelled = Delivery.objects.filter(issue=issue, status=Status.QUEUED).update(
            status=Status.FAILED, last_error="Cancelled before sending.", enqueued_at=None
        )
        editorial.issue_cancel(issue=issue, by=by, note=note)
    return cancelled


def progress(issue: Issue) -> dict[str, int]:
    """Counts of the issue's delivery rows by status, plus the total."""
    counts = {s: 0 for s in Status.values}
    for row in Delivery.objects.filter(issue=issue).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in Status.values)
    return counts


def send_test(*, issue: Issue, to: str) -> None:
    """Send one copy, marked as a test, to `to`; no delivery row, links are samples."""
    rendered = RenderedIssue(issue, test=True)
    recipient = Recipient(
        delivery_key=f"{issue.pk}.test",
        email=to,
        name="",
        unsubscribe_url=f"{settings.SITE_URL}/unsubscribe/test/",
        preferences_url=f"{settings.SITE_URL}/preferences/test/",
    )
    with transport() as mailer:
        outcome = mailer.send(rendered, [(0, recipient)])
    if not outcome.sent:
        reason = next(iter({**outcome.failed, **outcome.retry}.values()), "unknown error")
        raise SendError(f"The test message to {to} was not sent: {reason}")


_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def archive_links_check(issue: Issue) -> Check:
    """Links in the articles to issue pages of this site (`SITE_URL/<pub>/<vol>/<num>/`)
    must lead to a published issue: a reader must not land on a 404. A link to the
    issue itself passes, since its page appears when it is sent."""
    site = urlsplit(settings.SITE_URL)
    wanted: dict[tuple[str, int, int], str] = {}
    for body in issue.articles.order_by().values_list("body_html", flat=True):
        for href in _HREF.findall(body):
            url = urlsplit(html.unescape(href))
            if url.netloc and url.netloc != site.netloc:
                continue
            if not url.path.startswith("/"):
                continue
            try:
                match = resolve(url.path)
            except Resolver404:
                continue
            if match.view_name == "issues:issue":
                key = (match.kwargs["pub"], match.kwargs["volume"], match.kwargs["number"])
                wanted.setdefault(key, href)
    if not wanted:
        return Check("archive_links", True, "No link to an archive page of this site.")
    own = (issue.publication.slug, issue.volume.number, issue.number)
    condition = Q(pk__in=[])
    for pub, volume, number in wanted:
        condition |= Q(publication__slug=pub, volume__number=volume, number=number)
    found = set(
        Issue.objects.published()
        .filter(condition)
        .values_list("publication__slug", "volume__number", "number")
    )
    missing = [href for key, href in wanted.items() if key not in found and key != own]
    if missing:
        return Check(
            "archive_links",
            False,
            "Links to archive pages that do not exist: " + ", ".join(missing),
        )
    return Check("archive_links", True, f"{len(wanted)} archive link(s) lead to published issues.")
