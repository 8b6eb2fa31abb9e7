"""The report after a send: delivery counts, ESP events, SVG charts, failed recipients
and their CSV export; a fixed number of queries whatever the audience."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from itertools import count

import pytest

from delivery import dispatch, reports, services
from delivery.models import Delivery, DeliveryEvent, SendJob
from issues.models import Issue
from monitor_site import charts
from tests.factories import IssueFactory
from tests.helpers import member_of, url

pytestmark = pytest.mark.django_db
_keys = count()


def event(delivery: Delivery, kind: str, at, **fields) -> DeliveryEvent:
    return DeliveryEvent.objects.create(
        key=f"k{next(_keys)}",
        delivery=delivery,
        issue_id=delivery.issue_id,
        esp="test",
        kind=kind,
        email=delivery.email,
        occurred_at=at,
        **fields,
    )


@pytest.fixture
def sent_issue(issue, make_subscribers):
    """Eight readers: five sent (one bounced later), two failed, one skipped."""
    make_subscribers(8)
    services.send_start(issue=issue)
    job = SendJob.objects.get(issue=issue)
    start = job.started_at
    rows = list(Delivery.objects.filter(issue=issue).order_by("email"))
    for row in rows[:5]:
        row.status, row.sent_at, row.attempts = "sent", start + timedelta(minutes=1), 1
    rows[5].status, rows[5].attempts = "failed", 1
    rows[5].last_error = "SMTP 550 5.1.1 No such user"
    rows[6].status, rows[6].attempts = "failed", 3
    rows[6].last_error = '=HYPERLINK("http://evil") relay said no'
    rows[6].next_attempt_at = start + timedelta(minutes=5)
    rows[7].status, rows[7].last_error = "skipped", "Unsubscribed or suppressed before sending."
    Delivery.objects.bulk_update(
        rows, ["status", "sent_at", "attempts", "last_error", "next_attempt_at"]
    )
    for row in rows[:4]:
        event(row, "delivered", start + timedelta(minutes=2))
    event(rows[0], "opened", start + timedelta(hours=2, minutes=30))
    event(rows[0], "opened", start + timedelta(hours=3))
    event(rows[1], "opened", start + timedelta(hours=3))
    event(rows[1], "clicked", start + timedelta(hours=3), url="https://example.org/")
    event(rows[2], "complained", start + timedelta(hours=5))
    event(rows[3], "unsubscribed", start + timedelta(hours=6))
    event(rows[4], "bounced", start + timedelta(minutes=3), description="Mailbox full")
    event(rows[0], "opened", start + timedelta(hours=60))  # after the chart's window
    dispatch.finish_if_done(issue_id=issue.pk)
    return issue, rows


def test_report_counts_statuses_and_events(sent_issue):
    issue, _ = sent_issue
    job = SendJob.objects.get(issue=issue)

    report = reports.issue_report(issue=issue, job=job)

    assert report.counts == {
        "queued": 0,
        "sending": 0,
        "sent": 5,
        "failed": 2,
        "skipped": 1,
        "cancelled": 0,
    }
    assert report.events["delivered"] == (4, 4)
    assert report.events["opened"] == (4, 2)  # four opens by two readers
    assert report.events["clicked"] == (1, 1)
    assert report.figure("bounced") == report.figure("complained") == 1
    assert report.figure("unsubscribed") == 1
    assert dict(report.failure_reasons) == {
        "SMTP 550 5.1.1 No such user": 1,
        '=HYPERLINK("http://evil") relay said no': 1,
    }


def test_timeline_puts_events_in_hourly_buckets_from_the_start(sent_issue):
    issue, _ = sent_issue
    job = SendJob.objects.get(issue=issue)

    report = reports.issue_report(issue=issue, job=job)

    opened = report.timeline["opened"]
    assert len(opened) == reports.TIMELINE_HOURS
    assert sum(opened) == 3  # the open at 60 hours is outside the window
    # the first bucket is the clock hour sending started in: three hours later is bucket 3
    assert opened[3] >= 2
    assert sum(report.timeline["delivered"][:2]) == 4


def test_report_page_shows_figures_charts_and_failed_recipients(
    client, sent_issue, django_assert_num_queries
):
    issue, rows = sent_issue
    client.force_login(member_of("Editors", "editor"))

    # session, user, permissions (2), issue with its job, counts, events, tallies of
    # deleted events, timeline, failure reasons, failed recipients
    with django_assert_num_queries(11):
        response = client.get(url("report", issue))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<figure id="status-chart"><svg' in page
    assert '<figure id="timeline-chart"><svg' in page
    assert 'aria-label="Messages by status"' in page
    assert '<td data-kind="opened">2</td>' in page
    assert '<td data-status="failed">2</td>' in page
    failed = {row[0]: row for row in response.context["failed"]}
    assert set(failed) == {rows[4].email, rows[5].email, rows[6].email}
    assert failed[rows[4].email][1:3] == ("bounced", "Mailbox full")
    assert failed[rows[5].email][1:3] == ("failed", "SMTP 550 5.1.1 No such user")
    assert url("report_failed_csv", issue) in page


def test_report_queries_do_not_grow_with_the_failures(
    client, sent_issue, make_subscribers, django_assert_num_queries
):
    issue, _ = sent_issue
    more = make_subscribers(30, prefix="late")
    Delivery.objects.bulk_create(
        Delivery(
            issue=issue,
            subscriber=s.subscriber,
            subscription=s,
            email=s.subscriber.email,
            status="failed",
            last_error=f"SMTP 550 user {n} unknown",
        )
        for n, s in enumerate(more)
    )
    client.force_login(member_of("Editors", "editor"))

    with django_assert_num_queries(11):
        response = client.get(url("report", issue))

    assert len(response.context["failed"]) == 33


def test_failed_recipients_export_as_csv(client, sent_issue, django_assert_num_queries):
    issue, rows = sent_issue
    client.force_login(member_of("Editors", "editor"))

    with django_assert_num_queries(6):
        response = client.get(url("report_failed_csv", issue))
        body = b"".join(response.streaming_content).decode()

    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="monitor-6-11-failed.csv"' in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(body)))
    assert table[0] == ["email", "status", "reason", "attempts", "last_attempt"]
    by_email = {r[0]: r for r in table[1:]}
    assert len(by_email) == 3
    assert by_email[rows[5].email][1:4] == ["failed", "SMTP 550 5.1.1 No such user", "1"]
    # a reason from a remote server must not become a spreadsheet formula
    assert by_email[rows[6].email][2] == '\'=HYPERLINK("http://evil") relay said no'
    assert by_email[rows[6].email][4] == rows[6].next_attempt_at.isoformat()
    assert by_email[rows[4].email][1] == "bounced"
    assert by_email[rows[4].email][4] == rows[4].sent_at.isoformat()


def test_analyst_sees_the_report_but_not_the_recipients(client, sent_issue):
    issue, rows = sent_issue
    client.force_login(member_of("Analysts", "analyst"))

    response = client.get(url("report", issue))

    assert response.status_code == 200
    assert response.context["failed"] is None
    assert rows[5].email not in response.content.decode()
    assert client.get(url("report_failed_csv", issue)).status_code == 403


def test_report_of_an_issue_never_sent_says_so(client):
    issue = IssueFactory(number=3, status=Issue.Status.DRAFT)
    client.force_login(member_of("Editors", "editor"))

    response = client.get(url("report", issue))

    assert response.status_code == 200
    assert "there is nothing to report" in response.content.decode()


def test_change_form_links_the_report_once_sending_started(client, sent_issue):
    issue, _ = sent_issue
    client.force_login(member_of("Analysts", "analyst"))

    page = client.get(url("change", issue)).content.decode()

    assert url("report", issue) in page
    assert 'data-finished="1"' in page  # a finished send: the page does not poll


def test_charts_escape_labels_and_scale_bars():
    svg = charts.bar_chart(
        [("sent", "<script>alert(1)</script>", 50), ("failed", "Failed & lost", 100)],
        title='Status "breakdown"',
    )

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg and "Failed &amp; lost" in svg
    assert 'aria-label="Status &quot;breakdown&quot;"' in svg
    assert 'width="150" height="18"' in svg and 'width="300" height="18"' in svg


def test_timeline_chart_draws_one_line_per_series():
    svg = charts.timeline_chart(
        {"opened": [0, 4, 2], "clicked": [0, 1, 0]},
        labels={"opened": "Opened", "clicked": "<b>Clicked</b>"},
        title="Events",
    )

    assert svg.count("<polyline") == 2
    assert "&lt;b&gt;Clicked&lt;/b&gt;" in svg and "<b>" not in svg
    assert svg.startswith("<svg") and svg.endswith("</svg>")
