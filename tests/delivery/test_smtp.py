"""The SMTP path against a real SMTP server (aiosmtpd): one connection per chunk,
4xx retried, 5xx failed with the reason, the exact bytes on the wire."""

from __future__ import annotations

import email
import email.policy
from collections import Counter

import pytest

from delivery import progress, rate, services
from delivery.models import Delivery, RateSlot
from delivery.transports import pipelining as pipelining_module
from delivery.transports import smtp as smtp_transport
from tests.helpers import run_all

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelined"])
def pipelining(request, smtp_settings, monkeypatch):
    """Runs the test against a server without and with PIPELINING, and checks that the
    pipelined path was taken exactly when it was offered."""
    smtp_settings.pipelining = request.param
    calls = []
    real = pipelining_module.send
    monkeypatch.setattr(pipelining_module, "send", lambda *a, **k: calls.append(a) or real(*a, **k))
    yield request.param
    assert bool(calls) == request.param


def test_smtp_delivers_strict_mime_to_every_subscriber(
    issue, make_subscribers, smtp_settings, pipelining
):
    make_subscribers(25)
    services.send_start(issue=issue)

    run_all(issue)

    sink = smtp_settings
    assert sorted(sink.recipients()) == sorted(f"reader{n}@example.org" for n in range(25))
    for rcpt, raw in sink.messages:
        message = email.message_from_bytes(raw, policy=email.policy.strict)
        assert message.defects == []
        assert message["To"].addresses[0].addr_spec == rcpt
        number = rcpt.removeprefix("reader").removesuffix("@example.org")
        assert message["To"].addresses[0].display_name == f"Reader {number}"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert progress.progress(issue)["sent"] == 25


def test_smtp_4xx_is_retried_and_5xx_fails_with_the_reason(
    issue, make_subscribers, smtp_settings, pipelining
):
    make_subscribers(4)
    sink = smtp_settings
    sink.reject["reader1@example.org"] = "451 4.3.0 Try again later"
    sink.reject["reader2@example.org"] = "550 5.1.1 No such user"
    services.send_start(issue=issue)

    run_all(issue)

    rows = {d.email: d for d in Delivery.objects.filter(issue=issue)}
    assert rows["reader0@example.org"].status == "sent"
    assert rows["reader3@example.org"].status == "sent"
    assert rows["reader1@example.org"].status == "queued"
    assert rows["reader1@example.org"].last_error.startswith("SMTP 451")
    assert rows["reader1@example.org"].next_attempt_at is not None
    assert rows["reader2@example.org"].status == "failed"
    assert rows["reader2@example.org"].last_error == "SMTP 550 5.1.1 No such user"
    assert sorted(sink.recipients()) == ["reader0@example.org", "reader3@example.org"]


def test_a_message_refused_after_its_content_fails_or_waits_and_the_rest_go(
    issue, make_subscribers, smtp_settings, pipelining
):
    make_subscribers(5)
    sink = smtp_settings
    sink.reject_data["reader1@example.org"] = "554 5.7.1 Message refused"
    sink.reject_data["reader2@example.org"] = "452 4.3.1 Insufficient storage"
    services.send_start(issue=issue)

    run_all(issue)

    rows = {d.email: d for d in Delivery.objects.filter(issue=issue)}
    assert rows["reader1@example.org"].status == "failed"
    assert rows["reader1@example.org"].last_error == "SMTP 554 5.7.1 Message refused"
    assert rows["reader2@example.org"].status == "queued"
    assert rows["reader2@example.org"].last_error.startswith("SMTP 452")
    sent = ["reader0@example.org", "reader3@example.org", "reader4@example.org"]
    assert sorted(sink.recipients()) == sent
    assert sorted(e for e, d in rows.items() if d.status == "sent") == sent


def test_a_lost_connection_leaves_the_message_in_doubt_and_the_rest_go_over_a_new_one(
    issue, make_subscribers, smtp_settings, pipelining, settings
):
    settings.DELIVERY_SMTP_CONNECTIONS = 1
    make_subscribers(5)
    sink = smtp_settings
    sink.hang_up_at = "reader2@example.org"
    services.send_start(issue=issue)

    run_all(issue)

    rows = {d.email: d for d in Delivery.objects.filter(issue=issue)}
    others = ["reader0@example.org", "reader1@example.org", "reader3@example.org"]
    assert sorted(sink.recipients()) == [*others, "reader4@example.org"]
    assert [e for e, d in sorted(rows.items()) if d.status == "sent"] == sorted(sink.recipients())
    # only the message whose content went without a reply waits for a retry
    assert rows["reader2@example.org"].status == "queued"
    assert rows["reader2@example.org"].next_attempt_at is not None
    # the others went on over a new connection, without an attempt spent
    assert {rows[e].attempts for e in others} == {1}


def test_a_lost_connection_leaves_its_message_in_doubt_and_the_others_go_on(
    issue, make_subscribers, smtp_settings, pipelining, settings
):
    settings.DELIVERY_SMTP_CONNECTIONS = 3
    make_subscribers(30)
    sink = smtp_settings
    sink.hang_up_at = "reader2@example.org"
    services.send_start(issue=issue)

    run_all(issue)

    rows = {d.email: d for d in Delivery.objects.filter(issue=issue)}
    assert rows["reader2@example.org"].status == "queued"
    assert rows["reader2@example.org"].next_attempt_at is not None
    sent = sorted(e for e, d in rows.items() if d.status == "sent")
    assert sent == sorted(sink.recipients())
    # the two other connections sent the rest; only what the lost one held waits
    queued = [e for e, d in rows.items() if d.status == "queued"]
    assert len(sent) >= 30 - 1 - 2 and len(queued) <= 3, queued


def test_an_unreachable_server_leaves_the_chunk_queued_for_retry(issue, make_subscribers, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    make_subscribers(3)
    services.send_start(issue=issue)

    run_all(issue)

    assert progress.progress(issue)["queued"] == 3
    assert all("Connection refused" in d.last_error for d in Delivery.objects.all())


def test_rate_slots_are_shared_and_spaced_by_the_limit(publication):
    first = rate.reserve(publication.pk, rate=10, count=10)
    second = rate.reserve(publication.pk, rate=10, count=5)
    third = rate.reserve(publication.pk, rate=10, count=1)

    assert second - first == pytest.approx(1.0)
    assert third - second == pytest.approx(0.5)
    assert RateSlot.objects.get().next_at == pytest.approx(third + 0.1)


def test_test_send_goes_to_one_address_only_and_is_marked(issue, make_subscribers, smtp_settings):
    make_subscribers(3)
    services.send_test(issue=issue, to="editor@example.org")

    [(rcpt, raw)] = smtp_settings.messages
    assert rcpt == "editor@example.org"
    assert email.message_from_bytes(raw, policy=email.policy.strict)["Subject"].startswith("[TEST]")
    assert not Delivery.objects.exists()


def test_a_421_and_close_ends_the_connection_and_the_rest_go_over_a_new_one(
    issue, make_subscribers, smtp_settings, pipelining, settings
):
    settings.DELIVERY_SMTP_CONNECTIONS = 2
    make_subscribers(120)
    sink = smtp_settings
    sink.close_every = 25
    services.send_start(issue=issue)

    run_all(issue)

    assert sink.closed == 4
    counts = Counter(sink.recipients())
    assert len(counts) == 120 and max(counts.values()) == 1  # every one once
    rows = Delivery.objects.filter(issue=issue)
    # a refusal is not a doubt: each went again at once, no attempt spent, no retry
    assert set(rows.values_list("status", "attempts")) == {("sent", 1)}


def test_a_server_that_closes_on_every_message_sends_them_to_a_retry(
    issue, make_subscribers, smtp_settings, pipelining, settings
):
    settings.DELIVERY_SMTP_CONNECTIONS = 1
    make_subscribers(6)
    sink = smtp_settings
    sink.close_every = 1
    services.send_start(issue=issue)

    run_all(issue)

    assert sink.recipients() == []
    rows = Delivery.objects.filter(issue=issue)
    assert set(rows.values_list("status", flat=True)) == {"queued"}
    assert all(r.next_attempt_at for r in rows)
    assert any("421" in r.last_error for r in rows)
    # a few connections in a row, not one per message forever
    assert sink.closed <= 2 * smtp_transport.RECONNECTS
