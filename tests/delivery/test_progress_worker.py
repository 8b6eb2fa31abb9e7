"""With a real Celery worker and a real SMTP server: an editor sends from the admin and
watches the progress endpoint reach 100 %; an issue scheduled from the admin is started
by beat when its time comes."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import SendJob
from issues.models import Issue
from tests.helpers import member_of, status_of, url, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_editor_sends_and_watches_the_bar_reach_100_percent(
    client, issue, make_subscribers, smtp_sink, smtp_settings, celery_worker_process
):
    sink, port = smtp_sink
    # A send that lasts a few seconds, so that progress is seen moving: one connection
    # per worker process, 10 ms a message. The first look at the progress may take a
    # second or two (it asks the workers who consumes `send`).
    sink.delay = 0.01
    subscribers = make_subscribers(600)
    celery_worker_process(
        EMAIL_URL=f"smtp://127.0.0.1:{port}",
        MONITOR_DELIVERY_CHUNK_SIZE="50",
        MONITOR_DELIVERY_SMTP_CONNECTIONS="1",
    )
    client.force_login(member_of("Editors", "editor"))

    preview = client.get(url("preview", issue))
    assert preview.status_code == 200
    test = client.post(url("test", issue))
    assert test.status_code == 302
    wait_for(lambda: "editor@example.org" in sink.recipients(), timeout=30)
    confirm = client.get(url("send", issue))
    assert confirm.context["audience"] == 600
    client.post(url("send", issue))

    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        data = client.get(url("progress_json", issue)).json()
        seen.append(data)
        if data["finished"]:
            break
        time.sleep(0.2)

    final = seen[-1]
    assert final["finished"] and final["state"] == "done"
    assert final["percent"] == 100.0
    assert final["counts"]["sent"] == 600 and final["total"] == 600
    assert final["issue_status"] == Issue.Status.SENT
    done = [d["done"] for d in seen]
    assert done == sorted(done), "progress never goes back"
    assert any(0 < d["percent"] < 100 for d in seen), "the bar was seen part way"
    assert any(d["rate"] > 0 and d["eta_seconds"] is not None for d in seen[:-1])
    counts = Counter(sink.recipients())
    assert counts.pop("editor@example.org") == 1
    assert set(counts) == {s.subscriber.email for s in subscribers}
    assert max(counts.values()) == 1


def test_an_issue_scheduled_in_the_admin_is_started_by_beat(
    client, issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    make_subscribers(20)
    celery_worker_process(
        beat=True, EMAIL_URL=f"smtp://127.0.0.1:{port}", MONITOR_DELIVERY_SWEEP_SECONDS="2"
    )
    client.force_login(member_of("Editors", "editor"))
    at = timezone.localtime() + timedelta(seconds=4)

    client.post(url("schedule", issue), {"at": at.strftime("%Y-%m-%dT%H:%M:%S")})
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SCHEDULED
    assert sink.messages == []

    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=60)
    job = SendJob.objects.get(issue=issue)
    assert job.started_by is None  # the scheduler started it
    assert job.started_at >= issue.scheduled_at
    assert sorted(sink.recipients()) == sorted(f"reader{n}@example.org" for n in range(20))


def test_an_unscheduled_issue_is_not_sent_by_beat(
    client, issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    make_subscribers(5)
    worker = celery_worker_process(
        beat=True, EMAIL_URL=f"smtp://127.0.0.1:{port}", MONITOR_DELIVERY_SWEEP_SECONDS="2"
    )
    client.force_login(member_of("Editors", "editor"))
    at = timezone.localtime() + timedelta(seconds=3)
    client.post(url("schedule", issue), {"at": at.strftime("%Y-%m-%dT%H:%M:%S")})
    client.post(url("unschedule", issue))

    # let the time pass, then see beat sweep once more after it
    wait_for(lambda: timezone.now() > at + timedelta(seconds=1), timeout=10)
    swept = worker.log().count("delivery.tasks.sweep[")
    wait_for(lambda: worker.log().count("delivery.tasks.sweep[") >= swept + 2, timeout=30)
    assert status_of(issue) == Issue.Status.APPROVED
    assert sink.messages == []
    assert not SendJob.objects.filter(issue=issue).exists()
