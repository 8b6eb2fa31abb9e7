"""SMTP PIPELINING (RFC 2920) against two real servers, aiosmtpd and Postfix: one write
a message (its content with the next message's envelope), content dot-stuffed so that
lines starting with a dot arrive as written, every message accounted for."""

from __future__ import annotations

import email
import email.policy
import os
import smtplib

import pytest
from aiosmtpd.controller import Controller

from delivery.rendering import Recipient, rendered_issue
from delivery.transports import SmtpTransport
from issues.models import Issue
from tests.factories import ArticleFactory, IssueFactory
from tests.helpers import Sink, free_port, postfix_missing, running_postfix, wait_for

pytestmark = pytest.mark.django_db

DOTTED = "A first paragraph.\n\n.A line that starts with a dot\n\n..and one with two"


@pytest.fixture
def dotted_issue() -> Issue:
    issue = IssueFactory(status=Issue.Status.APPROVED, articles=0)
    ArticleFactory(issue=issue, body=DOTTED)
    return issue


def batch(issue: Issue, count: int) -> list[tuple[int, Recipient]]:
    return [
        (
            n,
            Recipient.for_subscription(
                issue_id=issue.pk,
                subscriber_id=n,
                subscription_id=n,
                email=f"reader{n}@example.org",
                name=f"Reader {n}",
            ),
        )
        for n in range(count)
    ]


@pytest.fixture
def writes(monkeypatch) -> list[bytes]:
    """Every write smtplib makes to a server, in order."""
    sent: list[bytes] = []
    real = smtplib.SMTP.send

    def send(self, data):
        sent.append(data if isinstance(data, bytes) else data.encode())
        return real(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", send)
    return sent


def send_to(port: int, settings, issue: Issue, items: list) -> object:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 10
    with SmtpTransport() as transport:
        return transport.send(rendered_issue(issue), items)


def check_arrived(received: list[tuple[str, bytes]], items: list, issue: Issue) -> None:
    rendered = rendered_issue(issue)
    by_rcpt = {rcpt: raw for rcpt, raw in received}
    assert sorted(by_rcpt) == sorted(r.email for _, r in items)
    for _, recipient in items:
        message = email.message_from_bytes(by_rcpt[recipient.email], policy=email.policy.strict)
        assert message.defects == []
        assert message["Message-ID"] == rendered.message_id(recipient)
        text = message.get_body(("plain",)).get_content()
        assert "\n.A line that starts with a dot\n" in text.replace("\r\n", "\n")
        assert "\n..and one with two" in text.replace("\r\n", "\n")


def one_write_a_message(writes: list[bytes], count: int) -> None:
    envelopes = [w for w in writes if b"MAIL FROM" in w]
    assert len(envelopes) == count
    # each message's content went out with the next message's envelope
    assert sum(w.count(b"\r\n.\r\nMAIL FROM") for w in writes) == count - 1


def test_pipelined_messages_reach_aiosmtpd_whole(dotted_issue, settings, smtp_sink, writes):
    sink, port = smtp_sink
    sink.pipelining = True
    items = batch(dotted_issue, 20)

    outcome = send_to(port, settings, dotted_issue, items)

    assert sorted(outcome.sent) == list(range(20)) and not outcome.retry and not outcome.failed
    one_write_a_message(writes, 20)
    check_arrived(sink.messages, items, dotted_issue)


def test_refusals_amid_a_pipelined_run_leave_the_others_sent(
    dotted_issue, settings, smtp_sink, writes
):
    sink, port = smtp_sink
    sink.pipelining = True
    sink.reject["reader3@example.org"] = "550 5.1.1 No such user"
    sink.reject_data["reader5@example.org"] = "451 4.3.0 Try again later"
    items = batch(dotted_issue, 8)

    outcome = send_to(port, settings, dotted_issue, items)

    assert outcome.failed == {3: "SMTP 550 5.1.1 No such user"}
    assert list(outcome.retry) == [5] and outcome.retry[5].startswith("SMTP 451")
    assert sorted(outcome.sent) == [0, 1, 2, 4, 6, 7]
    assert sorted(sink.recipients()) == [f"reader{n}@example.org" for n in (0, 1, 2, 4, 6, 7)]


@pytest.fixture
def postfix():
    """Postfix, relaying what it accepts to an aiosmtpd sink: (sink, Postfix's port, its
    log)."""
    reason = postfix_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and Postfix cannot run: {reason}")
        pytest.skip(reason)
    sink = Sink()
    relay_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=relay_port)
    controller.start()
    try:
        with running_postfix(relay_port) as (port, log):
            yield sink, port, log
    finally:
        controller.stop()


def test_pipelined_messages_go_through_postfix_whole(dotted_issue, settings, postfix, writes):
    sink, port, log = postfix
    items = batch(dotted_issue, 20)

    outcome = send_to(port, settings, dotted_issue, items)

    assert sorted(outcome.sent) == list(range(20)) and not outcome.retry and not outcome.failed
    one_write_a_message(writes, 20)
    try:
        wait_for(lambda: len(sink.messages) >= 20, timeout=60)
    except AssertionError:
        relayed = len(sink.messages)
        raise AssertionError(f"Postfix relayed {relayed} of 20:\n{log.read_text()}") from None
    check_arrived(sink.messages, items, dotted_issue)
