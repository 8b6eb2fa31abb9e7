"""What the admin shows about a send: live progress, the report afterwards, the failed
recipients. Read-only; each function is a fixed number of queries whatever the audience."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncHour

from delivery.models import Delivery, DeliveryEvent, EventTally, SendJob
from delivery.progress import status_counts
from issues.models import Issue
from monitor_site.csvcells import csv_lines
from subscriptions.models import Subscription

Status = Delivery.Status
Kind = DeliveryEvent.Kind

# What the report counts from the ESP's events, in this order.
REPORT_KINDS = (
    Kind.DELIVERED,
    Kind.BOUNCED,
    Kind.COMPLAINED,
    Kind.UNSUBSCRIBED,
    Kind.OPENED,
    Kind.CLICKED,
)
# Events the ESP records only if the send asked it to: the setting, and its name.
TRACKED_KINDS = {Kind.OPENED: ("track_opens", "open"), Kind.CLICKED: ("track_clicks", "click")}
# ESP events that mean the message did not reach the reader.
UNDELIVERED_KINDS = (Kind.BOUNCED, Kind.REJECTED, Kind.FAILED)
TIMELINE_HOURS = 48


def audience_size(issue: Issue) -> int:
    """How many subscribers a send started now would reach."""
    return Subscription.objects.audience(publication_id=issue.publication_id).count()


@dataclass
class Report:
    start: datetime | None
    counts: dict[str, int]
    total: int
    # kind -> (events, distinct addresses), of people: machines' opens and clicks apart
    events: dict[str, tuple[int, int]]
    # kind -> events per hour over the first TIMELINE_HOURS hours
    timeline: dict[str, list[int]]
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)
    # opened, clicked -> (events, distinct addresses) of privacy proxies and scanners
    machine: dict[str, tuple[int, int]] = field(default_factory=dict)
    # the tracked kinds the send did not ask the ESP to record, and none were reported
    untracked: frozenset[str] = frozenset()

    def figure(self, kind: str) -> int:
        """Distinct addresses an event of `kind` was reported for (people's, for opens
        and clicks)."""
        return self.events.get(kind, (0, 0))[1]


@dataclass(frozen=True)
class FigureRow:
    key: str  # the event kind, "-machine" for machines' opens and clicks
    label: str
    people: int | None  # None: not available
    events: int | None
    note: str = ""


def figure_rows(report: Report) -> list[FigureRow]:
    """The ESP's figures as the report page shows them, machines' opens and clicks
    apart, and what is unavailable because the send did not track it."""
    labels = dict(Kind.choices)
    rows = []
    for kind in REPORT_KINDS:
        if kind in report.untracked:
            note = f"Not available: {TRACKED_KINDS[kind][1]} tracking was off for this send."
            rows.append(FigureRow(kind, f"{labels[kind]} (ESP)", None, None, note))
            continue
        events, people = report.events[kind]
        rows.append(FigureRow(kind, f"{labels[kind]} (ESP)", people, events))
        if kind in TRACKED_KINDS:
            events, people = report.machine[kind]
            note = "Privacy proxies (Apple Mail) and security scanners, not readers."
            label = f"{labels[kind]} by machines (ESP)"
            rows.append(FigureRow(f"{kind}-machine", label, people, events, note))
    return rows


def _tracking(issue: Issue, job: SendJob | None) -> dict[str, bool]:
    source = job if job is not None else issue.publication
    return {kind: getattr(source, setting) for kind, (setting, _) in TRACKED_KINDS.items()}


def issue_report(*, issue: Issue, job: SendJob | None) -> Report:
    """The report of one send: five queries. The ESP's figures are the events stored
    plus the tallies of those deleted since (delivery/tallies.py)."""
    counts, _ = status_counts(issue_id=issue.pk)

    figures = {(k, machine): [0, 0] for k in REPORT_KINDS for machine in (False, True)}
    for row in (
        DeliveryEvent.objects.filter(issue=issue, kind__in=REPORT_KINDS)
        .order_by()
        .values("kind", "machine")
        .annotate(n=Count("id"), people=Count("email", distinct=True))
    ):
        figures[row["kind"], row["machine"]] = [row["n"], row["people"]]
    for kind, machine, n, people in EventTally.objects.filter(
        issue=issue, kind__in=REPORT_KINDS
    ).values_list("kind", "machine", "events", "people"):
        figures[kind, machine][0] += n
        figures[kind, machine][1] += people
    # Only opens and clicks can be machines' (delivery.feedback.is_machine).
    events = {k: tuple(figures[k, False]) for k in REPORT_KINDS}
    machine = {k: tuple(figures[k, True]) for k in TRACKED_KINDS}
    tracking = _tracking(issue, job)
    untracked = frozenset(
        k for k in TRACKED_KINDS if not tracking[k] and not events[k][0] and not machine[k][0]
    )

    start = job.started_at if job is not None else issue.sent_at
    timeline = {k: [0] * TIMELINE_HOURS for k in REPORT_KINDS}
    if start is not None:
        first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        for row in (
            DeliveryEvent.objects.filter(
                issue=issue,
                kind__in=REPORT_KINDS,
                occurred_at__gte=first,
                occurred_at__lt=first + timedelta(hours=TIMELINE_HOURS),
            )
            .order_by()
            .annotate(hour=TruncHour("occurred_at", tzinfo=UTC))
            .values("hour", "kind")
            .annotate(n=Count("id"))
        ):
            index = int((row["hour"] - first).total_seconds() // 3600)
            if 0 <= index < TIMELINE_HOURS:
                timeline[row["kind"]][index] += row["n"]

    reasons = list(
        Delivery.objects.filter(issue=issue, status=Status.FAILED)
        .order_by()
        .values("last_error")
        .annotate(n=Count("id"))
        .order_by("-n", "last_error")
        .values_list("last_error", "n")[:20]
    )
    return Report(
        start=start,
        counts=counts,
        total=sum(counts.values()),
        events=events,
        timeline=timeline,
        failure_reasons=[(r or "No reason recorded.", n) for r, n in reasons],
        machine=machine,
        untracked=untracked,
    )


def failed_recipients(issue: Issue) -> QuerySet[Delivery]:
    """Recipients the issue did not reach: rows that failed on our side, and rows the
    ESP later reported bounced or rejected. One query, annotated with the ESP's verdict."""
    undelivered = DeliveryEvent.objects.filter(
        delivery=OuterRef("pk"), kind__in=UNDELIVERED_KINDS
    ).order_by("-occurred_at")
    return (
        Delivery.objects.filter(issue=issue)
        .filter(Q(status=Status.FAILED) | Exists(undelivered))
        .annotate(
            esp_kind=Subquery(undelivered.values("kind")[:1]),
            esp_reason=Subquery(undelivered.values("description")[:1]),
            esp_code=Subquery(undelivered.values("reject_reason")[:1]),
        )
        .only("id", "email", "status", "attempts", "last_error", "sent_at", "next_attempt_at")
        .order_by("email", "id")
    )


def recipient_row(delivery: Delivery) -> tuple[str, str, str, int, str]:
    """`email,status,reason,attempts,last_attempt` for one failed recipient.

    A row has no timestamp of its last attempt: `sent_at` is that moment for a message
    accepted and then bounced, `next_attempt_at` the time its last retry was due."""
    if delivery.status == Status.FAILED:
        status, reason = Status.FAILED.value, delivery.last_error or "No reason recorded."
    else:
        status = delivery.esp_kind
        reason = delivery.esp_reason or delivery.esp_code or "Reported by the ESP."
    last = delivery.sent_at or (delivery.next_attempt_at if delivery.attempts > 1 else None)
    return (
        delivery.email,
        status,
        reason,
        delivery.attempts,
        last.isoformat() if last else "",
    )


CSV_HEADER = ("email", "status", "reason", "attempts", "last_attempt")


def failed_recipients_csv(issue: Issue) -> Iterator[str]:
    """The failed recipients as CSV lines, streamed from one query; a reason comes from a
    remote mail server, so its cells are escaped like every export's."""
    deliveries = failed_recipients(issue).iterator(chunk_size=2000)
    return csv_lines(itertools.chain([CSV_HEADER], map(recipient_row, deliveries)))
