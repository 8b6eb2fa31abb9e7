"""Pause, resume and cancel from the admin while a real worker sends to a real SMTP
server: a pause stops further sends, a resume sends the rest without duplicates, a
cancel stops the send for good."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from delivery.models import Delivery, SendJob
from issues.models import Issue
from tests.helpers import member_of, status_of, url, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

AUDIENCE = 400


def settled(issue: Issue) -> bool:
    """No message in flight: what was handed to the server before a pause has finished."""
    return not Delivery.objects.filter(issue=issue, status="sending").exists()


@pytest.fixture
def sending(client, issue, make_subscribers, smtp_sink, celery_worker_process):
    """An editor has started a send that lasts several seconds; some messages are out."""
    sink, port = smtp_sink
    sink.delay = 0.01
    make_subscribers(AUDIENCE)
    celery_worker_process(
        beat=True,
        EMAIL_URL=f"smtp://127.0.0.1:{port}",
        MONITOR_DELIVERY_CHUNK_SIZE="20",
        MONITOR_DELIVERY_SWEEP_SECONDS="2",
    )
    client.force_login(member_of("Editors", "editor"))
    client.post(url("send", issue))
    wait_for(lambda: len(sink.messages) >= 40, timeout=60)
    return issue, sink


def test_pause_stops_further_sends_and_resume_continues_without_duplicates(client, sending):
    issue, sink = sending

    client.post(url("pause", issue))
    wait_for(lambda: settled(issue), timeout=30)
    at_pause = len(sink.messages)
    time.sleep(4)  # two sweeps and every chunk task still queued get their chance

    assert len(sink.messages) == at_pause < AUDIENCE
    assert Delivery.objects.filter(issue=issue, status="sent").count() == at_pause
    assert SendJob.objects.get(issue=issue).state == SendJob.State.PAUSED
    assert status_of(issue) == Issue.Status.SENDING

    client.post(url("resume", issue))
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=120)

    counts = Counter(sink.recipients())
    assert len(counts) == AUDIENCE
    assert max(counts.values()) == 1
    assert client.get(url("progress_json", issue)).json()["percent"] == 100.0


def test_cancel_stops_the_send_for_good(client, sending):
    issue, sink = sending

    client.post(url("cancel", issue), {"note": "Sent to the wrong list"})
    wait_for(lambda: settled(issue), timeout=30)
    at_cancel = len(sink.messages)
    time.sleep(4)

    assert len(sink.messages) == at_cancel < AUDIENCE
    assert status_of(issue) == Issue.Status.CANCELLED
    sent = Delivery.objects.filter(issue=issue, status="sent").count()
    cancelled = Delivery.objects.filter(
        issue=issue, status="cancelled", last_error="Cancelled before sending."
    ).count()
    assert sent == at_cancel and sent + cancelled == AUDIENCE
    assert not Delivery.objects.filter(issue=issue, status="failed").exists()
    assert max(Counter(sink.recipients()).values()) == 1
    data = client.get(url("progress_json", issue)).json()
    assert data["finished"] and data["state"] == "cancelled"
