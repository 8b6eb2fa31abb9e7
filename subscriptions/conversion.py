"""The conversion report: how a publication's legacy readers (fax, post, the old mailing
list) move to email, and the offline readers' list for the mail room.

Who counts: subscriptions whose subscriber came from a legacy list, and any that is
offline, was invited or converted. Each is in exactly one state, the first that holds:
converted (accepted the invitation or joined by code, whatever came after), offline,
bounced (or complained), declined (unsubscribed), expired (an invitation unanswered for
Subscription.INVITATION_DAYS after its last message), reminded, invited, other
(by email without a conversion: imported as confirmed, or confirming on the site). A
reader merged into an address's existing subscriber is counted under that subscriber's
source. Read-only; a fixed number of queries whatever the number of readers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain

from django.db.models import Case, CharField, Count, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from issues.models import Publication
from monitor_site.csvcells import csv_lines
from subscriptions.letters import Letter
from subscriptions.models import Subscriber, Subscription

Status = Subscription.Status
Source = Subscriber.Source

STATES = (
    ("offline", "Offline"),
    ("invited", "Invited"),
    ("reminded", "Reminded"),
    ("converted", "Converted"),
    ("declined", "Declined"),
    ("bounced", "Bounced"),
    ("expired", "Expired"),
    ("other", "Other"),
)
SOURCES = (
    (Source.LEGACY_FAX, "Fax"),
    (Source.LEGACY_POSTAL, "Postal"),
    (Source.LEGACY_EMAIL, "Legacy email"),
    ("other", "Other sources"),
)
WEEKS = 12
OFFLINE_CSV_HEADER = ("name", "organization", "fax", "postal_address", "join_code", "source")


def _states(now: datetime) -> dict[str, Q]:
    """Each state as a condition, exclusive in the order of the module docstring
    (`last_invitation` is the time of the last invitation or reminder)."""
    converted = Q(converted_at__isnull=False)
    waiting = ~converted & Q(status=Status.PENDING, invited_at__isnull=False)
    expired_before = now - timedelta(days=Subscription.INVITATION_DAYS)
    conditions = {
        "converted": converted,
        "offline": ~converted & Q(status=Status.OFFLINE),
        "bounced": ~converted & Q(status__in=(Status.BOUNCED, Status.COMPLAINED)),
        "declined": ~converted & Q(status=Status.UNSUBSCRIBED),
        "expired": waiting & Q(last_invitation__lte=expired_before),
        "reminded": waiting & Q(last_invitation__gt=expired_before, reminders_sent__gt=0),
        "invited": waiting & Q(last_invitation__gt=expired_before, reminders_sent=0),
    }
    named = Q()
    for condition in conditions.values():
        named |= condition
    conditions["other"] = ~named
    return conditions


def legacy_subscriptions(publication: Publication) -> QuerySet[Subscription]:
    return Subscription.objects.filter(publication=publication).filter(
        Q(subscriber__source__in=Subscriber.LEGACY_SOURCES)
        | Q(status=Status.OFFLINE)
        | Q(invited_at__isnull=False)
        | Q(converted_at__isnull=False)
    )


@dataclass
class ConversionReport:
    publication: Publication
    counts: dict[str, dict[str, int]]  # source -> state -> subscriptions
    weekly: list[tuple[date, int]]  # the Monday of each of the last WEEKS weeks -> converted

    @property
    def table(self) -> list[tuple[str, str, list[int]]]:
        """(source, label, counts in the order of STATES), the sources that have readers."""
        return [
            (source, label, [self.counts[source][state] for state, _ in STATES])
            for source, label in SOURCES
            if any(self.counts[source].values()) or source != "other"
        ]

    @property
    def totals(self) -> dict[str, int]:
        return {state: sum(row[state] for row in self.counts.values()) for state, _ in STATES}

    @property
    def total_row(self) -> list[tuple[str, int]]:
        """(state, readers in every source), in the order of STATES."""
        totals = self.totals
        return [(state, totals[state]) for state, _ in STATES]

    @property
    def total(self) -> int:
        return sum(self.totals.values())


def conversion_report(*, publication: Publication, now: datetime | None = None) -> ConversionReport:
    """Counts by source and state, and conversions per week: two queries."""
    now = now or timezone.now()
    conditions = _states(now)
    legacy = [s for s, _ in SOURCES if s != "other"]
    source = Case(
        *(When(subscriber__source=s, then=Value(s)) for s in legacy),
        default=Value("other"),
        output_field=CharField(),
    )
    counts = {s: {state: 0 for state, _ in STATES} for s, _ in SOURCES}
    rows = (
        legacy_subscriptions(publication)
        .alias(last_invitation=Coalesce("reminded_at", "invited_at"))
        .annotate(group=source)
        .order_by()
        .values("group")
        .annotate(**{state: Count("pk", filter=q) for state, q in conditions.items()})
    )
    for row in rows:
        counts[row["group"]] = {state: row[state] for state, _ in STATES}

    tz = timezone.get_current_timezone()
    this_week = timezone.localdate(now, tz)
    this_week -= timedelta(days=this_week.weekday())
    first = this_week - timedelta(weeks=WEEKS - 1)
    per_week = {
        row["week"].date() if isinstance(row["week"], datetime) else row["week"]: row["n"]
        for row in legacy_subscriptions(publication)
        .filter(converted_at__date__gte=first)
        .annotate(week=TruncWeek("converted_at", tzinfo=tz))
        .order_by()
        .values("week")
        .annotate(n=Count("pk"))
    }
    weekly = [(first + timedelta(weeks=n), 0) for n in range(WEEKS)]
    weekly = [(monday, per_week.get(monday, 0)) for monday, _ in weekly]
    return ConversionReport(publication=publication, counts=counts, weekly=weekly)


def offline_readers_csv(publication: Publication, *, source: str | None = None) -> Iterator[str]:
    """The publication's offline readers for the mail room (name, organization, fax,
    postal address, join code as printed, source), streamed from one query."""
    offline = Subscription.objects.offline(publication, source=source).iterator(chunk_size=2000)
    rows = (
        (r.name, r.organization, r.fax, r.postal_address, r.join_code_display, r.source)
        for r in (subscription.subscriber for subscription in offline)
    )
    yield from csv_lines(chain([OFFLINE_CSV_HEADER], rows))


def invitation_letters(
    subscriptions: Iterable[Subscription], *, variant: str
) -> tuple[list[Letter], list[Subscriber]]:
    """The letters (`variant="letter"`, to a postal address) or fax sheets (`"fax"`, to a
    fax number) for these offline readers, once per reader, and the readers left out:
    those without what the variant needs, or no longer offline with a code."""
    needs = "postal_address" if variant == "letter" else "fax"
    letters: list[Letter] = []
    left_out: list[Subscriber] = []
    seen: set[int] = set()
    for subscription in subscriptions:
        reader = subscription.subscriber
        if reader.pk in seen:
            continue
        seen.add(reader.pk)
        offline = subscription.status == Status.OFFLINE and reader.join_code
        if not offline or not getattr(reader, needs).strip():
            left_out.append(reader)
        else:
            letters.append(
                Letter(
                    name=reader.name,
                    organization=reader.organization,
                    postal_address=reader.postal_address,
                    fax=reader.fax,
                    code=reader.join_code,
                    join_url=reader.join_url,
                )
            )
    return letters, left_out
