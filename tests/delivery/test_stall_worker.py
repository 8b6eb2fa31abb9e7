"""Stalled sends with real worker processes on the configured broker: a send no worker
consumes, a send that moves, and a send whose tasks were lost with no beat to find them
again, as /healthz and the issue's admin page show them."""

from __future__ import annotations

import time

import pytest

from delivery import health, services
from issues.models import Issue, Publication
from tests.factories import StaffFactory
from tests.helpers import member_of, purge_queues, status_of, url, wait_for, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def healthz(client) -> tuple[int, dict]:
    response = client.get("/healthz")
    return response.status_code, response.json()


def test_a_send_that_no_worker_consumes_fails_healthz_until_one_does(
    client, issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    make_subscribers(20)
    celery_worker_process(queues=("default",), **worker_env(port))
    assert healthz(client)[0] == 200  # nothing to send: no worker for it is needed yet

    services.send_start(issue=issue)

    status, body = healthz(client)
    assert status == 503 and body["failing"] == ["delivery"] and "details" not in body
    client.force_login(StaffFactory())
    queues = healthz(client)[1]["details"]["delivery"]["queues"]
    assert len(queues["default"]) == 1 and queues["send"] == []

    celery_worker_process(queues=("send",), **worker_env(port))
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=120)
    # an answer with no consumer is kept a few seconds only
    wait_for(lambda: healthz(client)[0] == 200, timeout=health.EMPTY_TTL + 20)
    assert len(sink.messages) == 20


def test_a_send_that_moves_keeps_healthz_200_and_its_page_shows_no_warning(
    client, issue, make_subscribers, smtp_sink, celery_worker_process, settings
):
    sink, port = smtp_sink
    settings.DELIVERY_STALL_SECONDS = 12
    # 2,000 messages at 100 a second: the send takes longer than the threshold
    Publication.objects.filter(pk=issue.publication_id).update(messages_per_second=100)
    make_subscribers(2000)
    celery_worker_process(**worker_env(port))
    client.force_login(member_of("Editors", "editor"))

    started = time.monotonic()
    services.send_start(issue=issue)
    answers, warnings = [], []
    while status_of(issue) != Issue.Status.SENT:
        assert time.monotonic() - started < 180, "the send did not finish"
        answers.append(healthz(client)[0])
        warnings.append(client.get(url("progress_json", issue)).json()["warning"])
        time.sleep(0.5)
    took = time.monotonic() - started

    assert took > settings.DELIVERY_STALL_SECONDS + health.PROGRESS_EVERY
    assert set(answers) == {200}
    assert set(warnings) == {None}
    assert len(sink.messages) == 2000


def test_a_send_whose_tasks_were_lost_stalls_without_beat_and_beat_completes_it(
    client, issue, make_subscribers, smtp_sink, celery_worker_process, settings
):
    sink, port = smtp_sink
    settings.DELIVERY_STALL_SECONDS = 4
    make_subscribers(30)
    services.send_start(issue=issue)
    purge_queues()  # as a restart of Redis would
    celery_worker_process(**worker_env(port))
    client.force_login(member_of("Editors", "editor"))

    wait_for(lambda: healthz(client)[0] == 503, timeout=60)
    body = healthz(client)[1]

    assert body["failing"] == ["delivery"]
    delivery = body["details"]["delivery"]
    assert len(delivery["queues"]["send"]) == 1  # a worker is there, but nothing is sent
    [stalled] = delivery["stalled"]
    assert stalled["issue_id"] == issue.pk
    page = client.get(url("change", issue)).content.decode()
    assert "No message of this send has gone out for" in page
    assert "`celery -A monitor_site beat` beside it?" in page
    assert sink.messages == []

    celery_worker_process(beat=True, **worker_env(port))
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=120)
    assert healthz(client)[0] == 200
    assert "has gone out for" not in client.get(url("change", issue)).content.decode()
    assert len(sink.messages) == 30
