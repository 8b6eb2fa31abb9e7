"""A chunk records its rows' outcomes as it goes, not at its end: at least every 100
messages, or every second when they go slower; and it never goes faster than the
publication's rate limit, whatever the number of connections."""

from __future__ import annotations

import time

import pytest

from delivery import chunk, services, transports
from delivery.models import Delivery
from tests.helpers import chunks

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(monkeypatch) -> list[int]:
    """How many outcomes each record of the chunk wrote, in order."""
    sizes: list[int] = []
    record = chunk.outcomes_record

    def recording(issue_id, mine, outcome, *args, **kwargs):
        sizes.append(len(outcome))
        return record(issue_id, mine, outcome, *args, **kwargs)

    monkeypatch.setattr(chunk, "outcomes_record", recording)
    return sizes


def slow_backend(monkeypatch, seconds: float) -> None:
    send = transports.BackendTransport.send

    def slow_send(self, rendered, part):
        time.sleep(seconds * len(part))
        return send(self, rendered, part)

    monkeypatch.setattr(transports.BackendTransport, "send", slow_send)


def send_one_chunk(issue) -> None:
    services.send_start(issue=issue)
    ((lo, hi),) = chunks(issue, size=10_000)
    chunk.chunk_send(issue_id=issue.pk, lo=lo, hi=hi)


def test_a_chunk_is_recorded_at_least_every_100_messages(
    issue, make_subscribers, settings, recorded, monkeypatch
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    slow_backend(monkeypatch, 0.001)
    make_subscribers(450)

    send_one_chunk(issue)

    assert sum(recorded) == 450
    assert len(recorded) >= 4, recorded
    # what goes on while a record is written waits for the next one
    assert max(recorded) < 200, recorded
    assert not Delivery.objects.filter(issue=issue).exclude(status="sent").exists()


def test_a_slow_chunk_is_recorded_every_second(
    issue, make_subscribers, settings, recorded, monkeypatch
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    slow_backend(monkeypatch, 0.1)  # 10 messages a second: 100 would take 10 s
    make_subscribers(30)

    send_one_chunk(issue)

    assert sum(recorded) == 30
    assert len(recorded) >= 2, recorded
    assert recorded[0] < 30


def test_several_connections_keep_to_the_publications_rate_limit(
    issue, make_subscribers, smtp_settings, settings
):
    settings.DELIVERY_SMTP_CONNECTIONS = 8
    issue.publication.messages_per_second = 20
    issue.publication.save()
    make_subscribers(50)

    started = time.monotonic()
    send_one_chunk(issue)
    elapsed = time.monotonic() - started

    assert len(smtp_settings.recipients()) == 50
    # 20 a second: the first second's worth at once, then 30 more over 1.5 s at least
    assert elapsed >= 1.4, elapsed
