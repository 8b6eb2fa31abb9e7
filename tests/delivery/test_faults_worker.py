"""Delivery under faults with real worker processes on the configured broker and
database: retries go out when due, a killed worker's rows come back within seconds of a
restart, a pause or a cancel stops within a step per process, a server that answers
421 and closes costs no duplicate and little time, and a database outage loses no
chunk task. Each test prints its figures (`FAULTS name: value`); MONITOR_FAULT_READERS
sets the audience (3,000 by default)."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from delivery import progress, services
from delivery.chunk import RECORD_EVERY
from delivery.models import Delivery, SendJob
from issues.models import Issue
from tests.factories import IssueFactory
from tests.helpers import status_of, wait_for, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

READERS = int(os.environ.get("MONITOR_FAULT_READERS", "3000"))
CONCURRENCY = 2
# What one worker process may have sent and not recorded, or had in flight, at a
# moment: a step, and what its connections held.
IN_FLIGHT = RECORD_EVERY + 8 * django_settings.DELIVERY_SMTP_CONNECTIONS


def figure(name: str, value: object) -> None:
    print(f"FAULTS {name}: {value}")


def sent_count(issue: Issue) -> int:
    return Delivery.objects.filter(issue=issue, status="sent").count()


def test_retries_go_out_within_seconds_of_their_due_time(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    subscribers = make_subscribers(READERS)
    deferred = {s.subscriber.email for s in subscribers[::10]}
    sink.defer_once = set(deferred)
    # no sweep to help: the wake-up tasks alone hand the retries out
    env = {**worker_env(port), "MONITOR_DELIVERY_RETRY_BASE_SECONDS": "2"}
    env["MONITOR_DELIVERY_SWEEP_SECONDS"] = "600"
    celery_worker_process(concurrency=CONCURRENCY, beat=True, **env)

    services.send_start(issue=issue)
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=180)

    retried = Delivery.objects.filter(issue=issue, attempts=2)
    assert {d.email for d in retried} == deferred
    late = sorted((d.sent_at - d.next_attempt_at).total_seconds() for d in retried)
    p95 = late[int(0.95 * (len(late) - 1))]
    figure("retries", len(late))
    figure(
        "retry lateness p50/p95/max s", f"{statistics.median(late):.2f}/{p95:.2f}/{late[-1]:.2f}"
    )
    assert p95 <= 5, late
    assert all("451" in d.last_error for d in retried)  # kept once sent
    assert max(Counter(sink.recipients()).values()) == 1


def test_a_killed_workers_rows_are_sent_again_within_seconds_of_the_restart(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    sink.delay = 0.004  # slow enough that the kill lands mid-send
    make_subscribers(READERS)
    # the shipped lease and sweep
    env = {
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "MONITOR_DELIVERY_CHUNK_SIZE": str(django_settings.DELIVERY_CHUNK_SIZE),
    }
    worker = celery_worker_process(concurrency=CONCURRENCY, beat=True, **env)

    services.send_start(issue=issue)
    wait_for(lambda: len(sink.messages) >= READERS // 5, timeout=120)
    worker.kill()
    killed = set(
        Delivery.objects.filter(issue=issue, status="sending").values_list("id", flat=True)
    )
    assert killed, "nothing was in flight at the kill; slow the sink down"

    restarted = time.monotonic()
    celery_worker_process(concurrency=CONCURRENCY, beat=True, **env)
    rows = Delivery.objects.filter(id__in=killed)
    wait_for(lambda: rows.filter(status="sent").exists(), timeout=60)
    first = time.monotonic() - restarted
    wait_for(lambda: not rows.exclude(status="sent").exists(), timeout=120)
    last = time.monotonic() - restarted
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=180)

    figure("killed rows", len(killed))
    figure("killed rows sent again after restart, first/last s", f"{first:.1f}/{last:.1f}")
    assert first <= 30
    counts = Counter(sink.recipients())
    assert len(counts) == READERS
    figure("duplicates after the kill", sum(n - 1 for n in counts.values()))
    assert sum(n - 1 for n in counts.values()) <= CONCURRENCY * IN_FLIGHT


@pytest.mark.parametrize("stop", ["pause", "cancel"])
def test_pause_and_cancel_stop_within_a_step_per_worker_process(
    issue, make_subscribers, smtp_sink, celery_worker_process, stop
):
    sink, port = smtp_sink
    sink.delay = 0.004
    make_subscribers(READERS)
    env = {
        **worker_env(port),
        "MONITOR_DELIVERY_CHUNK_SIZE": str(django_settings.DELIVERY_CHUNK_SIZE),
    }
    celery_worker_process(concurrency=CONCURRENCY, beat=True, **env)

    services.send_start(issue=issue)
    wait_for(lambda: len(sink.messages) >= READERS // 5, timeout=120)
    if stop == "pause":
        services.send_pause(issue=issue)
    else:
        services.send_cancel(issue=issue, note="Wrong issue")
    at = len(sink.messages)
    # until nothing is left in flight: the chunks gave their rows back
    wait_for(lambda: not Delivery.objects.filter(issue=issue, status="sending").exists(), 30)
    time.sleep(2)
    after = len(sink.messages) - at
    figure(f"messages after {stop} returned ({CONCURRENCY} processes)", after)
    assert after <= CONCURRENCY * RECORD_EVERY, after
    counts = progress.progress(issue)
    assert counts["sent"] == len(sink.messages)
    if stop == "cancel":
        assert counts["cancelled"] == READERS - counts["sent"] and counts["failed"] == 0
        assert counts["queued"] == 0
        return
    assert counts["queued"] == READERS - counts["sent"]
    services.send_resume(issue=issue)
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=180)
    recipients = Counter(sink.recipients())
    assert len(recipients) == READERS and max(recipients.values()) == 1


def timed_send(issue: Issue, sink, expected: int) -> float:
    started = time.monotonic()
    services.send_start(issue=issue)
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=300, interval=0.05)
    assert len(sink.messages) == expected
    return time.monotonic() - started


def test_a_421_and_close_on_every_500th_message_costs_no_duplicate_and_little_time(
    issue, publication, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    sink.pipelining = True
    make_subscribers(READERS)
    env = {
        **worker_env(port),
        "MONITOR_DELIVERY_CHUNK_SIZE": str(django_settings.DELIVERY_CHUNK_SIZE),
    }
    celery_worker_process(concurrency=CONCURRENCY, beat=True, **env)

    clean = timed_send(issue, sink, READERS)
    sink.close_every = 500
    faulty = IssueFactory(publication=publication, status=Issue.Status.APPROVED)
    with_faults = timed_send(faulty, sink, 2 * READERS)

    figure("421-and-close: refused", sink.closed)
    figure("421-and-close: seconds without/with faults", f"{clean:.1f}/{with_faults:.1f}")
    counts = Counter(rcpt for rcpt, _ in sink.messages[READERS:])
    assert len(counts) == READERS and max(counts.values()) == 1  # no duplicate
    assert sink.closed >= READERS // 500 - 1
    assert with_faults <= 2 * clean + 1
    attempts = set(Delivery.objects.filter(issue=faulty).values_list("attempts", flat=True))
    figure("421-and-close: attempts per row", sorted(attempts))


class Outage:
    """The test database unreachable for the worker processes: new connections refused
    and every open one but this test's ended, until `end`."""

    def __init__(self) -> None:
        self.name = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (self.keep,) = cursor.fetchone()
        url = connection.settings_dict
        self.admin = psycopg.connect(
            host=url["HOST"] or "127.0.0.1",
            port=url["PORT"] or 5432,
            user=url["USER"],
            password=url["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        )
        self._over = threading.Event()
        self._thread = threading.Thread(target=self._end_connections, daemon=True)

    def start(self) -> None:
        self.admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        self._thread.start()

    def _end_connections(self) -> None:
        with psycopg.connect(self.admin.info.dsn, autocommit=True) as conn:
            while not self._over.is_set():
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> %s",
                    [self.name, self.keep],
                )
                time.sleep(0.2)

    def end(self) -> None:
        self._over.set()
        self._thread.join()
        self.admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')
        self.admin.close()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL outage")
def test_a_database_outage_of_20_seconds_loses_no_chunk_task(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    sink.delay = 0.004
    make_subscribers(READERS)
    env = {
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        # small chunks: many tasks wait in the queue during the outage
        "MONITOR_DELIVERY_CHUNK_SIZE": "200",
    }
    worker = celery_worker_process(concurrency=CONCURRENCY, beat=True, **env)

    services.send_start(issue=issue)
    wait_for(lambda: len(sink.messages) >= READERS // 5, timeout=120)
    outage = Outage()
    outage.start()
    time.sleep(20)
    outage.end()
    back = time.time()
    wait_for(lambda: any(t > back for t in list(sink.arrived)), timeout=60, interval=0.05)
    resumed = min(t for t in list(sink.arrived) if t > back) - back
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=240)

    figure("outage: sending resumed after the database returned, s", f"{resumed:.1f}")
    counts = Counter(sink.recipients())
    assert len(counts) == READERS
    duplicates = sum(n - 1 for n in counts.values())
    figure("outage: duplicates", duplicates)
    log = worker.log()
    figure("outage: chunk tasks retried", log.count("Retry in"))
    assert "raised unexpected" not in log  # no task dropped with an error
    assert "sweep skipped, the database is away" in log
    assert resumed <= 10
    assert duplicates <= CONCURRENCY * IN_FLIGHT
    assert SendJob.objects.get(issue=issue).state == SendJob.State.DONE
