"""Stalled sends (delivery/health.py): the rule, the progress that workers record, and
what /healthz and the issue's admin page say. With real workers: test_stall_worker.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery import chunk, health, services
from delivery.models import Delivery, SendJob
from issues.models import Issue
from tests.factories import IssueFactory, StaffFactory
from tests.helpers import member_of, url

pytestmark = pytest.mark.django_db

THRESHOLD = 300  # MONITOR_DELIVERY_STALL_SECONDS by default


def later(seconds: float) -> time_machine.travel:
    return time_machine.travel(timezone.now() + timedelta(seconds=seconds))


@pytest.fixture
def job(issue, make_subscribers) -> SendJob:
    """A send of five queued rows that no worker has touched."""
    make_subscribers(5)
    services.send_start(issue=issue)
    return SendJob.objects.get(issue=issue)


def fresh(job: SendJob) -> SendJob:
    return SendJob.objects.get(pk=job.pk)


def stalled_ids() -> list[int]:
    return [j.pk for j in health.stalled_jobs()]


# --- the rule ----------------------------------------------------------------------


def test_a_send_with_queued_rows_stalls_once_nothing_moved_for_the_threshold(job):
    with later(THRESHOLD - 5):
        assert not health.is_stalled(fresh(job))
        assert stalled_ids() == []
    with later(THRESHOLD + 5):
        assert health.is_stalled(fresh(job))
        assert stalled_ids() == [job.pk]


def test_the_threshold_comes_from_the_setting(job, settings):
    settings.DELIVERY_STALL_SECONDS = 30
    with later(31):
        assert stalled_ids() == [job.pk]


def test_outcomes_recorded_by_a_chunk_keep_the_send_moving(job, smtp_settings):
    with later(THRESHOLD + 5):
        # two of the five rows go out; three are still queued
        ids = Delivery.objects.filter(issue=job.issue).order_by("id").values_list("id", flat=True)
        chunk.chunk_send(issue_id=job.issue_id, lo=ids[0], hi=ids[1])
        assert len(smtp_settings.messages) == 2
        assert not health.is_stalled(fresh(job))
    with later(2 * THRESHOLD + 10):
        assert health.is_stalled(fresh(job))


def test_progress_is_written_at_most_every_few_seconds(job):
    started = fresh(job).progressed_at
    with later(health.PROGRESS_EVERY - 2):
        health.progress_record(issue_id=job.issue_id)
        assert fresh(job).progressed_at == started
    with later(health.PROGRESS_EVERY + 1):
        health.progress_record(issue_id=job.issue_id)
        assert fresh(job).progressed_at >= started + timedelta(seconds=health.PROGRESS_EVERY)


def test_a_paused_send_is_not_stalled_and_resuming_starts_the_clock_again(job):
    services.send_pause(issue=job.issue)
    with later(3600):
        assert not health.is_stalled(fresh(job))
        services.send_resume(issue=job.issue)
        assert not health.is_stalled(fresh(job))
    with later(3600 + THRESHOLD + 5):
        assert health.is_stalled(fresh(job))


def test_a_row_waiting_for_a_retry_stalls_the_send_only_once_due_for_the_threshold(job):
    now = timezone.now()
    rows = Delivery.objects.filter(issue=job.issue)
    rows.update(status=Delivery.Status.SENT, sent_at=now)
    retry_at = now + timedelta(minutes=20)
    Delivery.objects.filter(pk=rows.order_by("id")[0].pk).update(
        status=Delivery.Status.QUEUED, attempts=6, next_attempt_at=retry_at
    )

    with later(20 * 60 - 10):  # waiting, as it should
        assert not health.is_stalled(fresh(job))
    with later(20 * 60 + THRESHOLD - 10):  # due: the sweeper has a threshold to hand it out
        assert not health.is_stalled(fresh(job))
    # what the rows said is kept a while
    with later(20 * 60 + THRESHOLD + health.DUE_WORK_TTL):
        assert health.is_stalled(fresh(job))


def reads_of_the_rows() -> tuple[list[int], int]:
    table = Delivery._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        found = stalled_ids()
    return found, sum(f'FROM "{table}"' in q["sql"] for q in queries.captured_queries)


def test_the_rows_of_a_late_send_are_read_once_a_minute_not_at_every_look(job):
    with later(THRESHOLD + 5):
        assert reads_of_the_rows() == ([job.pk], 1)
        assert reads_of_the_rows() == ([job.pk], 0)
    with later(THRESHOLD + 5 + health.DUE_WORK_TTL + 1):
        assert reads_of_the_rows() == ([job.pk], 1)


def test_a_row_left_sending_by_a_lost_worker_stalls_the_send(job):
    rows = Delivery.objects.filter(issue=job.issue)
    rows.update(status=Delivery.Status.SENT)
    Delivery.objects.filter(pk=rows.order_by("-id")[0].pk).update(
        status=Delivery.Status.SENDING, lease_until=timezone.now() + timedelta(seconds=60)
    )
    with later(THRESHOLD + 5):
        assert health.is_stalled(fresh(job))


def test_a_send_whose_rows_are_all_final_is_not_stalled(job):
    Delivery.objects.filter(issue=job.issue).update(status=Delivery.Status.SENT)
    with later(3600):
        assert not health.is_stalled(fresh(job))
        assert stalled_ids() == []


def test_a_scheduled_issue_not_started_a_threshold_after_its_time_is_overdue():
    issue = IssueFactory(status=Issue.Status.SCHEDULED)
    Issue.objects.filter(pk=issue.pk).update(scheduled_at=timezone.now() + timedelta(hours=1))
    with later(3600 + THRESHOLD - 10):
        assert health.overdue_issues() == []
    with later(3600 + THRESHOLD + 10):
        assert health.overdue_issues() == [issue]


@pytest.mark.parametrize(
    ("stalled_for", "consumers", "message"),
    [
        (
            420,
            [],
            "No message of this send has gone out for 7 minutes, and no worker consumes the "
            "send queue: start one with `celery -A monitor_site worker`.",
        ),
        (
            90,
            ["celery@host"],
            "No message of this send has gone out for 90 seconds; is a worker running "
            "`celery -A monitor_site worker`, and `celery -A monitor_site beat` beside it?",
        ),
        (
            3 * 3600,
            None,  # the workers could not be asked
            "No message of this send has gone out for 3 hours; is a worker running "
            "`celery -A monitor_site worker`, and `celery -A monitor_site beat` beside it?",
        ),
        (
            None,
            [],
            "No worker consumes the send queue, so nothing of this send goes out: "
            "start one with `celery -A monitor_site worker`.",
        ),
        (None, ["celery@host"], None),
        (None, None, None),
    ],
)
def test_the_warning_says_what_is_wrong_and_what_to_run(stalled_for, consumers, message):
    assert health.SendHealth(stalled_for, consumers).message == message


# --- /healthz ------------------------------------------------------------------------


def test_a_stalled_send_fails_healthz_naming_delivery_and_only_staff_see_which(client, job):
    with later(THRESHOLD + 5):
        anonymous = client.get("/healthz")
        client.force_login(StaffFactory())
        staff = client.get("/healthz")

    assert anonymous.status_code == 503
    assert anonymous.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "ok", "delivery": "failing"},
        "failing": ["delivery"],
    }
    assert staff.status_code == 503
    delivery = staff.json()["details"]["delivery"]
    [stalled] = delivery["stalled"]
    assert stalled["issue_id"] == job.issue_id
    assert stalled["issue"] == "The Monitor, Volume 6, Issue 11"
    assert stalled["progressed_at"] == job.progressed_at.isoformat()
    assert stalled["message"].startswith("No message of this send has gone out for 5 minutes")
    assert delivery["send_needed"] is True
    assert delivery["queues"] == {"default": [], "send": []}  # no worker in this test


def test_an_overdue_schedule_fails_healthz(client):
    issue = IssueFactory(status=Issue.Status.SCHEDULED)
    Issue.objects.filter(pk=issue.pk).update(scheduled_at=timezone.now())
    with later(THRESHOLD + 5):
        client.force_login(StaffFactory())
        response = client.get("/healthz")
    assert response.status_code == 503
    assert [o["issue_id"] for o in response.json()["details"]["delivery"]["overdue"]] == [issue.pk]


def test_with_nothing_to_send_healthz_does_not_ask_the_workers(client, issue):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["delivery"] == "ok"
    assert cache.get(health.CONSUMERS_KEY) is None


# --- the issue's admin page ----------------------------------------------------------


def test_the_admin_page_and_its_progress_warn_while_the_send_is_stalled(client, job):
    client.force_login(member_of("Editors", "editor"))
    with later(7 * 60 + 5):
        page = client.get(url("change", job.issue)).content.decode()
        progress = client.get(url("progress_json", job.issue)).json()

    expected = "No message of this send has gone out for 7 minutes"
    assert expected in page
    assert '<div id="send-warning" role="alert">' in page  # shown, not hidden
    assert progress["warning"].startswith(expected)


def test_a_paused_send_shows_no_warning(client, job):
    services.send_pause(issue=job.issue)
    client.force_login(member_of("Editors", "editor"))
    with later(3600):
        page = client.get(url("change", job.issue)).content.decode()
        progress = client.get(url("progress_json", job.issue)).json()

    assert '<div id="send-warning" role="alert" hidden>' in page
    assert "has gone out" not in page
    assert progress["warning"] is None


def test_the_admin_page_of_an_overdue_scheduled_issue_says_it_has_not_started(client):
    issue = IssueFactory(status=Issue.Status.SCHEDULED)
    Issue.objects.filter(pk=issue.pk).update(scheduled_at=timezone.now())
    client.force_login(member_of("Editors", "editor"))
    with later(10 * 60):
        page = client.get(url("change", issue)).content.decode()
    assert "This issue was due to go out 10 minutes ago and has not started" in page
