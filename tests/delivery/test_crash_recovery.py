"""Nothing lost, nothing doubled, with real worker processes on the configured broker:
a worker SIGKILLed mid-send, the broker flushed mid-send, chunk races between workers."""

from __future__ import annotations

import email
import email.policy
import time
from collections import Counter, defaultdict

import pytest
from django.conf import settings as django_settings

from delivery import progress, services
from delivery.chunk import RECORD_EVERY
from delivery.models import Delivery
from delivery.tasks import send_chunk
from issues.models import Issue
from tests.helpers import purge_queues, status_of, wait_for, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def message_ids_by_recipient(sink) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for rcpt, raw in list(sink.messages):
        ids[rcpt].add(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"])
    return ids


def test_worker_killed_mid_send_then_restarted_misses_no_one(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    sink.delay = 0.004  # slow enough that the kill lands mid-send
    subscribers = make_subscribers(3000)
    # Chunks far larger than what is recorded at a time: the bound below is the
    # recording's, not the claim's.
    env = {**worker_env(port), "MONITOR_DELIVERY_CHUNK_SIZE": "1500"}
    worker = celery_worker_process(concurrency=2, beat=True, **env)

    services.send_start(issue=issue)
    wait_for(lambda: len(sink.messages) >= 600, timeout=120)
    worker.kill()
    received_at_kill = len(sink.messages)
    assert received_at_kill < 3000, "the send finished before the kill; slow the sink down"

    restarted = time.monotonic()
    celery_worker_process(beat=True, **env)
    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=120)
    recovery_seconds = time.monotonic() - restarted

    counts = Counter(sink.recipients())
    assert set(counts) == {s.subscriber.email for s in subscribers}
    duplicates = [rcpt for rcpt, n in counts.items() if n > 1]
    # Per worker process: what it sent since its last record (RECORD_EVERY messages at
    # most, reported while the record was being written) and what its connections held.
    in_doubt = RECORD_EVERY + 2 * django_settings.DELIVERY_SMTP_CONNECTIONS
    assert len(duplicates) <= 2 * in_doubt, len(duplicates)
    ids = message_ids_by_recipient(sink)
    assert all(len(ids[rcpt]) == 1 for rcpt in duplicates), "a duplicate must share its Message-ID"
    assert progress.progress(issue)["sent"] == 3000
    assert recovery_seconds < 120


def flush_broker() -> None:
    url = django_settings.CELERY_BROKER_URL
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url).flushdb()
    else:
        purge_queues()


def test_broker_flushed_mid_send_is_completed_by_the_sweeper(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    sink.delay = 0.004
    make_subscribers(1500)
    celery_worker_process(beat=True, **worker_env(port))

    services.send_start(issue=issue)
    wait_for(lambda: len(sink.messages) >= 200, timeout=120)
    flush_broker()

    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=120)
    counts = Counter(sink.recipients())
    assert len(counts) == 1500
    assert max(counts.values()) == 1  # a flush loses queued tasks, never a message in flight


def test_two_workers_racing_for_chunks_send_each_message_once(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    make_subscribers(1000)
    env = worker_env(port)
    celery_worker_process(concurrency=2, **env)
    celery_worker_process(concurrency=2, **env)

    services.send_start(issue=issue)
    # every chunk handed out twice more: the claims decide who sends
    ids = list(Delivery.objects.filter(issue=issue).order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        for _ in range(2):
            send_chunk.delay(issue.pk, chunk[0], chunk[-1])

    wait_for(lambda: status_of(issue) == Issue.Status.SENT, timeout=120)
    counts = Counter(sink.recipients())
    assert len(counts) == 1000
    assert max(counts.values()) == 1
