"""The fan-out: an issue's audience snapshotted into Delivery rows, one per subscriber, by
one INSERT … SELECT in the transaction that starts the send."""

from __future__ import annotations

from django.db import connection
from django.db.models import DateTimeField, F, Value
from django.utils import timezone

from delivery.models import Delivery
from issues.models import Issue
from subscriptions.models import Subscription

Status = Delivery.Status


def fan_out(issue: Issue) -> tuple[int, int | None, int | None]:
    """Create the Delivery rows of the audience in one statement: active subscriptions
    of the publication whose address is not suppressed. Returns how many, and the
    first and last id. It runs once per issue, in the transaction that creates the
    issue's SendJob, whose one-per-issue constraint makes a second run fail whole; the
    unique pair would too."""
    # The SELECT of the audience queryset, each column named in the order of the
    # INSERT's.
    columns = {
        "issue_id": Value(issue.pk),
        "subscriber_id": F("subscriber_id"),
        "subscription_id": F("id"),
        "email": F("subscriber__email"),
        "status": Value(Status.QUEUED),
        "attempts": Value(0),
        "esp_message_id": Value(""),
        "last_error": Value(""),
        "created_at": Value(timezone.now(), output_field=DateTimeField()),
    }
    audience = Subscription.objects.audience(publication_id=issue.publication_id)
    select = audience.order_by().annotate(**{f"d_{k}": v for k, v in columns.items()})
    select = select.values_list(*(f"d_{k}" for k in columns))
    sql, params = select.query.sql_with_params()
    insert = f"INSERT INTO {Delivery._meta.db_table} ({', '.join(columns)}) {sql}"
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


# The columns the engine's queries filter on; the addresses' statistics are the costly
# ones and none of its queries needs them (see docs/benchmarks.md); autovacuum analyzes
# the rest later.
_PLANNED = ("id", "issue", "status", "next_attempt_at", "claim", "enqueued_at", "lease_until")


def analyze() -> None:
    """Fresh planner statistics for the delivery table once a send has added its rows,
    so that the chunk queries of the first minute (before autovacuum would analyze
    it) scan the primary key ranges they name."""
    if connection.vendor == "postgresql":
        columns = ", ".join(Delivery._meta.get_field(name).column for name in _PLANNED)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Delivery._meta.db_table} ({columns})")
