"""Delivery under faults, in this process: a pause or a cancel stops a chunk within a
step, rows due again are handed out behind the cursor, a retry plans a look for when it
falls due, a step is recorded through a lost database connection, and the operator's
`send_issue --pause | --resume | --cancel`. The same with real worker processes:
test_faults_worker.py."""

from __future__ import annotations

import io
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from delivery import chunk, dispatch, progress, reports, services, sweep
from delivery.chunk import RECORD_EVERY
from delivery.claim import rows_claim
from delivery.models import Delivery, SendJob
from delivery.record import outcomes_record
from delivery.tasks import wake
from delivery.transports import Outcome
from issues.models import Issue
from tests.helpers import chunks, database_url, run_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_chunk(issue, make_subscribers, settings):
    """1,000 readers in one chunk, sent through the outbox."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DELIVERY_CHUNK_SIZE = 1000
    make_subscribers(1000)
    services.send_start(issue=issue)
    ((lo, hi),) = chunks(issue, size=10_000)
    return lo, hi


def stop_after(monkeypatch, issue, count: int, stop) -> list[int]:
    """Call `stop` (pause or cancel) once `count` messages went out, from the place the
    chunk reads the send's state; returns [messages out when it returned]."""
    read = chunk.job_state
    at: list[int] = []

    def reading(issue_id: int):
        if not at and len(mail.outbox) >= count:
            stop()
            at.append(len(mail.outbox))
        return read(issue_id)

    monkeypatch.setattr(chunk, "job_state", reading)
    return at


def test_a_pause_stops_a_chunk_within_a_step_and_gives_its_rows_back(issue, one_chunk, monkeypatch):
    lo, hi = one_chunk
    at = stop_after(monkeypatch, issue, 250, lambda: services.send_pause(issue=issue))

    result = chunk.chunk_send(issue_id=issue.pk, lo=lo, hi=hi)

    after = len(mail.outbox) - at[0]
    assert after <= RECORD_EVERY, after
    counts = progress.progress(issue)
    assert counts["sent"] == len(mail.outbox) and counts["sending"] == 0
    assert counts["queued"] == 1000 - len(mail.outbox) == result.given_back
    # given back with their attempt: they were never tried
    queued = Delivery.objects.filter(issue=issue, status="queued")
    assert set(queued.values_list("attempts", "claim")) == {(0, None)}

    assert services.send_resume(issue=issue)
    run_all(issue)
    assert Counter(m.to[0] for m in mail.outbox).most_common(1)[0][1] == 1
    assert len(mail.outbox) == 1000
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT


def test_a_cancel_stops_a_chunk_and_its_unsent_rows_count_as_cancelled_not_failed(
    issue, one_chunk, monkeypatch
):
    lo, hi = one_chunk
    at = stop_after(
        monkeypatch, issue, 300, lambda: services.send_cancel(issue=issue, note="Wrong issue")
    )

    chunk.chunk_send(issue_id=issue.pk, lo=lo, hi=hi)

    assert len(mail.outbox) - at[0] <= RECORD_EVERY
    counts = progress.progress(issue)
    assert counts["sent"] == len(mail.outbox)
    assert counts["cancelled"] == 1000 - len(mail.outbox)
    assert counts["failed"] == counts["sending"] == counts["queued"] == 0
    report = reports.issue_report(issue=issue, job=SendJob.objects.get(issue=issue))
    assert report.counts["cancelled"] == counts["cancelled"] and report.counts["failed"] == 0
    assert report.failure_reasons == []
    assert list(reports.failed_recipients_csv(issue)) == [
        "email,status,reason,attempts,last_attempt\r\n"
    ]


def test_rows_of_a_lost_worker_of_a_cancelled_send_are_cancelled_not_queued(
    issue, make_subscribers
):
    make_subscribers(3)
    services.send_start(issue=issue)
    Delivery.objects.update(status="sending", lease_until=timezone.now() - timedelta(seconds=1))
    services.send_cancel(issue=issue, note="Wrong issue")

    assert sweep.release_expired_leases() == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"cancelled"}


def test_rows_due_again_are_handed_out_behind_the_cursor_before_new_rows(
    issue, make_subscribers, settings
):
    settings.DELIVERY_CHUNK_SIZE = 10
    make_subscribers(100)
    services.send_start(issue=issue)
    ids = list(Delivery.objects.filter(issue=issue).order_by("id").values_list("id", flat=True))
    assert dispatch.dispatch(issue_id=issue.pk, chunks=2) == 2  # rows 0-19 handed out
    # two of them come back due (a retry, a lost worker's), 80 new rows wait ahead
    Delivery.objects.filter(id__in=ids[3:5]).update(next_attempt_at=timezone.now())

    handed = []
    with _enqueued(handed):
        assert dispatch.dispatch(issue_id=issue.pk, chunks=2) == 3
    again, new = dispatch.priorities()
    assert handed[0] == (issue.pk, ids[3], ids[4], again)  # the rows due again first
    # then new rows, up to the window's 20 rows, after what else is queued
    assert handed[1:] == [(issue.pk, ids[20], ids[29], new), (issue.pk, ids[30], ids[37], new)]
    assert SendJob.objects.get(issue=issue).cursor == ids[37]


def test_a_retry_plans_a_look_at_the_issue_for_when_it_falls_due(
    issue, make_subscribers, settings, monkeypatch
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_subscribers(4)
    services.send_start(issue=issue)
    planned: list[tuple[tuple, float]] = []
    monkeypatch.setattr(
        wake, "apply_async", lambda args, countdown: planned.append((args, countdown))
    )
    Delivery.objects.filter(issue=issue).update(
        status="queued", next_attempt_at=timezone.now() + timedelta(seconds=7)
    )

    run_all(issue)  # nothing due: the chunk plans a look for the first due time
    assert len(mail.outbox) == 0
    ((args, countdown),) = planned
    assert args[0] == issue.pk and 6 < countdown <= 8
    run_all(issue)
    assert len(planned) == 1  # one look per issue and due second, however many ask


def test_a_wake_up_that_comes_a_moment_early_plans_another_for_the_same_second(
    issue, make_subscribers, monkeypatch
):
    make_subscribers(2)
    services.send_start(issue=issue)
    planned: list[tuple[tuple, float]] = []
    monkeypatch.setattr(
        wake, "apply_async", lambda args, countdown: planned.append((args, countdown))
    )
    due = timezone.now() + timedelta(seconds=0.5)
    Delivery.objects.filter(issue=issue).update(status="queued", next_attempt_at=due)
    dispatch.wake_when_due(issue.pk)
    ((args, _),) = planned

    assert wake(*args) == 0  # before the rows are due: nothing to hand out
    assert len(planned) == 2 and planned[1][0] == args  # looked at again in that second


def test_sweeping_a_busy_send_hands_out_the_rows_it_took_back(issue, make_subscribers, settings):
    make_subscribers(3)
    services.send_start(issue=issue)
    assert dispatch.dispatch(issue_id=issue.pk) == 1
    Delivery.objects.update(status="sending", lease_until=timezone.now() - timedelta(seconds=1))
    SendJob.objects.update(handed_out_at=timezone.now())  # busy: handed out a moment ago

    result = sweep.sweep()

    assert (result["released"], result["dispatched"]) == (3, 1)
    rows = Delivery.objects.filter(issue=issue)
    assert all(r.status == "queued" and "worker" in r.last_error for r in rows)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("send_issue", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_send_issue_pauses_resumes_and_cancels_as_the_admin_does(issue, make_subscribers):
    make_subscribers(3)
    with pytest.raises(CommandError, match="not sending: nothing to pause"):
        run("monitor", "6", "11", "--pause")
    services.send_start(issue=issue)

    assert "paused" in run("monitor", "6", "11", "--pause")
    assert SendJob.objects.get(issue=issue).state == "paused"
    with pytest.raises(CommandError, match="not sending: nothing to pause"):
        run("monitor", "6", "11", "--pause")
    assert "sending again" in run("monitor", "6", "11", "--resume")
    with pytest.raises(CommandError, match="not paused: nothing to resume"):
        run("monitor", "6", "11", "--resume")
    with pytest.raises(CommandError, match="the note is required"):
        run("monitor", "6", "11", "--cancel")
    assert SendJob.objects.get(issue=issue).state == "running"

    out = run("monitor", "6", "11", "--cancel", "--note", "Wrong date in the headline")

    assert "3 queued message(s) will not be sent" in out
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.CANCELLED
    assert issue.events.get(to_status=Issue.Status.CANCELLED).note == "Wrong date in the headline"
    with pytest.raises(CommandError, match="not sending: nothing to cancel"):
        run("monitor", "6", "11", "--cancel", "--note", "again")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pause", "--resume"), "not allowed with argument"),
        (("--cancel", "--test-to", "a@example.org"), "cannot go with"),
        (("--cancel", "--note", "x" * 1001), "at most 1000 characters"),
    ],
)
def test_send_issue_controls_refuse_bad_input_with_a_clear_error(
    issue, make_subscribers, args, message
):
    make_subscribers(1)
    services.send_start(issue=issue)
    with pytest.raises(CommandError, match=message):
        run("monitor", "6", "11", *args)
    assert SendJob.objects.get(issue=issue).state == "running"


class _enqueued:
    """Collects the chunk tasks a dispatch enqueues (on commit) instead of sending them."""

    def __init__(self, into: list) -> None:
        self.into = into

    def __enter__(self):
        from delivery.tasks import send_chunk

        self._patch = pytest.MonkeyPatch()
        self._patch.setattr(
            send_chunk,
            "apply_async_on_commit",
            lambda a, priority: self.into.append((*a, priority)),
        )
        return self

    def __exit__(self, *exc) -> None:
        self._patch.undo()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="ends a PostgreSQL backend")
@pytest.mark.django_db(transaction=True)
def test_a_step_is_recorded_through_a_lost_database_connection(issue, make_subscribers):
    make_subscribers(5)
    services.send_start(issue=issue)
    claim = rows_claim(issue_id=issue.pk, lo=0, hi=10**9, size=100, names=False)
    ids = [row[0] for row in claim.rows]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(database_url(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])

    outcomes_record(issue.pk, claim.mine, Outcome(sent=dict.fromkeys(ids, "")), {}, set(ids))

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid  # a new connection
    assert progress.progress(issue)["sent"] == 5
