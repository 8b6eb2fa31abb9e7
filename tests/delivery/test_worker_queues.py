"""`celery -A monitor_site worker` with no -Q does all the work; -Q splits it."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.core.cache import cache

from delivery import health, services
from delivery.models import Delivery
from delivery.tasks import send_chunk
from issues.models import Issue
from monitor_site.celery import app as celery_app
from monitor_site.tasks import HEARTBEAT_KEY, heartbeat
from tests.helpers import purge_queues, status_of, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.worker
def test_a_worker_started_without_queues_delivers_a_send(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    subscribers = make_subscribers(250)
    worker = celery_worker_process(**worker_env(port))

    services.send_start(issue=issue)

    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=120)
    counts = Counter(sink.recipients())
    assert set(counts) == {s.subscriber.email for s in subscribers}
    assert max(counts.values()) == 1
    assert "-Q" not in worker.proc.args
    consumers = health.queue_consumers()
    assert consumers is not None
    assert len(consumers["default"]) == 1 and consumers["send"] == consumers["default"]


@pytest.mark.worker
def test_a_worker_on_the_default_queue_alone_leaves_sends_to_a_send_worker(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    make_subscribers(50)
    cache.delete(HEARTBEAT_KEY)
    celery_worker_process(queues=("default",), **worker_env(port))

    services.send_start(issue=issue)
    heartbeat.delay()

    # It takes the default queue's tasks, sent after the send's chunks...
    wait_for(lambda: cache.get(HEARTBEAT_KEY), timeout=60)
    # ...and none of the chunks.
    time.sleep(3)
    assert sink.messages == []
    assert Delivery.objects.filter(issue=issue, status="queued").count() == 50

    celery_worker_process(queues=("send",), **worker_env(port))
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=120)
    assert sorted(Counter(sink.recipients()).values()) == [1] * 50


def queue_sizes() -> dict[str, int]:
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        return {
            queue.name: channel.queue_declare(queue=queue.name, passive=True).message_count
            for queue in celery_app.conf.task_queues
        }


def test_each_task_lands_in_its_own_queue_only(issue):
    purge_queues()
    try:
        send_chunk.delay(issue.pk, 1, 1)
        heartbeat.delay()
        heartbeat.delay()

        assert queue_sizes() == {"default": 2, "send": 1}
    finally:
        purge_queues()
