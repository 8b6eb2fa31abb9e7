"""The live progress endpoint: counts, percent, rate and time left in a fixed number of
queries; staff only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from delivery import dispatch, progress, services
from delivery.models import Delivery, SendJob
from issues.models import Issue
from tests.helpers import cache_is_redis, member_of

pytestmark = pytest.mark.django_db


def progress_url(issue: Issue | int) -> str:
    return reverse("admin:issues_issue_progress_json", args=[getattr(issue, "pk", issue)])


@pytest.fixture
def sending(issue, make_subscribers):
    """Ten readers: four sent in the last few seconds, one failed, five still queued."""
    make_subscribers(10)
    services.send_start(issue=issue)
    now = timezone.now()
    SendJob.objects.filter(issue=issue).update(started_at=now - timedelta(minutes=5))
    ids = list(Delivery.objects.filter(issue=issue).order_by("id").values_list("id", flat=True))
    Delivery.objects.filter(id__in=ids[:4]).update(status="sent", sent_at=now)
    Delivery.objects.filter(id=ids[4]).update(status="failed", last_error="SMTP 550")
    return issue


def test_progress_reports_counts_percent_rate_and_time_left(
    client, sending, django_assert_num_queries
):
    client.force_login(member_of("Editors", "editor"))
    client.get(progress_url(sending))  # asks the workers who consumes `send`, for a while

    # session, user, permissions (2), the send job with its issue, one aggregate, and the
    # cached answer about the workers where the cache is the database
    with django_assert_num_queries(6 if cache_is_redis() else 7):
        response = client.get(progress_url(sending))

    data = response.json()
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    assert data["counts"] == {
        "queued": 5,
        "sending": 0,
        "sent": 4,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
    }
    assert data["total"] == 10 and data["done"] == 5 and data["percent"] == 50.0
    assert data["state"] == "running" and not data["finished"]
    assert data["issue_status"] == "sending"
    # four messages in the last 30 s window
    assert data["rate"] == pytest.approx(4 / progress.RATE_WINDOW_SECONDS, abs=0.1)
    assert data["eta_seconds"] == pytest.approx(5 / (4 / progress.RATE_WINDOW_SECONDS), rel=0.1)


def test_a_paused_send_has_no_rate_and_no_estimate(client, sending):
    services.send_pause(issue=sending)
    client.force_login(member_of("Analysts", "analyst"))  # staff who may view issues

    data = client.get(progress_url(sending)).json()

    assert data["state"] == "paused"
    assert data["rate"] == 0 and data["eta_seconds"] is None


def test_a_finished_send_reports_its_average_rate(sending):
    Delivery.objects.filter(issue=sending, status="queued").update(
        status="sent", sent_at=timezone.now()
    )
    dispatch.finish_if_done(issue_id=sending.pk)
    job = SendJob.objects.get(issue=sending)

    snapshot = progress.progress_snapshot(job=job)

    assert snapshot.finished and snapshot.percent == 100.0 and snapshot.eta_seconds is None
    elapsed = (job.finished_at - job.started_at).total_seconds()
    assert snapshot.rate == pytest.approx(9 / elapsed)


def test_before_a_send_the_endpoint_says_none(client, issue, django_assert_num_queries):
    client.force_login(member_of("Editors", "editor"))

    with django_assert_num_queries(6):
        data = client.get(progress_url(issue)).json()

    assert data["state"] == "none" and data["total"] == 0
    assert client.get(progress_url(issue.pk + 1000)).status_code == 404


def test_progress_is_for_staff_only(client, sending):
    assert client.get(progress_url(sending)).status_code == 302  # to the admin login
    client.force_login(User.objects.create_user("reader", "r@example.org", "pw"))
    assert client.get(progress_url(sending)).status_code == 302
    client.force_login(User.objects.create_user("stranger", "s@example.org", "pw", is_staff=True))
    assert client.get(progress_url(sending)).status_code == 403


def test_change_form_polls_while_sending(client, sending):
    client.force_login(member_of("Editors", "editor"))

    page = client.get(reverse("admin:issues_issue_change", args=[sending.pk])).content.decode()

    assert f'data-url="{progress_url(sending)}"' in page
    assert 'data-finished="0"' in page and 'data-poll="3"' in page
    assert 'max="100" value="50.0"' in page
