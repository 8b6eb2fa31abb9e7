from __future__ import annotations

import smtplib

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives

from subscriptions import tasks
from subscriptions.models import Subscription
from tests.helpers import make_subscription


@pytest.fixture
def pending(publication) -> Subscription:
    return make_subscription(publication, status=Subscription.Status.PENDING, name="Ann")


def failing_send(monkeypatch, errors: list[Exception]) -> list[int]:
    calls: list[int] = []
    real_send = EmailMultiAlternatives.send

    def send(self, fail_silently=False):
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return real_send(self, fail_silently)

    monkeypatch.setattr(EmailMultiAlternatives, "send", send)
    return calls


def test_transient_smtp_failures_are_retried(monkeypatch, pending):
    calls = failing_send(
        monkeypatch,
        [smtplib.SMTPResponseException(451, b"try later"), smtplib.SMTPServerDisconnected()],
    )
    tasks.send_confirmation.apply(args=[pending.subscriber_id]).get()
    assert len(calls) == 3
    assert len(mail.outbox) == 1


def test_permanent_smtp_failures_are_not_retried(monkeypatch, pending):
    calls = failing_send(monkeypatch, [smtplib.SMTPResponseException(550, b"no such user")])
    tasks.send_confirmation.apply(args=[pending.subscriber_id]).get()
    assert len(calls) == 1
    assert mail.outbox == []


def test_tasks_skip_rows_that_are_gone_or_no_longer_need_mail(pending):
    tasks.send_confirmation.run(pending.subscriber_id + 999)
    pending.status = Subscription.Status.ACTIVE
    pending.save()
    tasks.send_confirmation.run(pending.subscriber_id)  # nothing pending any more
    assert mail.outbox == []


def test_messages_are_multipart_with_header_safe_values(publication):
    publication.sender_name = "The Monitor\r\nBcc: victim@example.org"
    publication.save()
    subscription = make_subscription(publication, status=Subscription.Status.PENDING)
    tasks.send_confirmation.run(subscription.subscriber_id)
    message = mail.outbox[0].message()
    assert message.is_multipart()
    assert [p.get_content_type() for p in message.get_payload()] == ["text/plain", "text/html"]
    assert "\n" not in message["From"] and "Bcc" not in message
    assert message["Reply-To"] == "pubs@example.org"
