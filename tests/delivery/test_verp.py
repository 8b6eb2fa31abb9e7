"""VERP on the SMTP path (delivery/verp.py) against a real SMTP server (aiosmtpd): every
message's envelope sender names its delivery row under a signature nobody can forge, no
bounce domain keeps the From address, and a 5xx refusal of the recipient at RCPT time
bounces the delivery and suppresses the address, as an ESP's hard bounce would."""

from __future__ import annotations

import pytest

from delivery import policy, services, verp
from delivery.models import Delivery, DeliveryEvent
from delivery.rendering import rendered_issue
from subscriptions.models import Subscription, Suppression
from tests.helpers import run_all

pytestmark = pytest.mark.django_db

DOMAIN = "bounce.example.org"


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelined"])
def sink(request, smtp_settings, settings):
    smtp_settings.pipelining = request.param
    settings.BOUNCE_DOMAIN = DOMAIN
    return smtp_settings


def test_each_message_carries_the_signed_return_path_of_its_delivery(issue, make_subscribers, sink):
    make_subscribers(5)
    services.send_start(issue=issue)

    run_all(issue)

    rows = dict(Delivery.objects.filter(issue=issue).values_list("email", "id"))
    assert sorted(sink.senders) == sorted(rows)
    for rcpt, sender in sink.senders.items():
        (key,) = verp.addresses_in(f"To: <{sender}>")
        assert sender == f"bounces+{key}@{DOMAIN}"
        assert verp.delivery_id(key) == rows[rcpt]
        assert len(sender.split("@")[0]) <= 64  # RFC 5321 §4.5.3.1.1


def test_without_a_bounce_domain_the_envelope_sender_is_the_from_address(
    issue, make_subscribers, smtp_settings, settings
):
    settings.BOUNCE_DOMAIN = ""
    make_subscribers(2)
    services.send_start(issue=issue)

    run_all(issue)

    assert set(smtp_settings.senders.values()) == {rendered_issue(issue).envelope_from}


def test_a_key_for_another_delivery_or_another_secret_is_refused(settings):
    settings.BOUNCE_DOMAIN = DOMAIN
    sender = verp.envelope_sender(default="x@example.org", delivery_id=41)
    (key,) = verp.addresses_in(sender)
    _, signature = key.split(".", 1)

    assert verp.delivery_id(key) == 41
    with pytest.raises(verp.ForgedKey):
        verp.delivery_id(f"42.{signature}")
    with pytest.raises(verp.ForgedKey):
        verp.delivery_id("41")
    settings.SECRET_KEY = "another secret"
    with pytest.raises(verp.ForgedKey):
        verp.delivery_id(key)


def test_a_5xx_refusal_at_rcpt_bounces_the_delivery_and_suppresses_the_address(
    issue, make_subscribers, sink
):
    make_subscribers(4)
    sink.reject["reader1@example.org"] = "550 5.1.1 No such user"
    sink.reject["reader2@example.org"] = "450 4.2.0 Mailbox busy"
    services.send_start(issue=issue)

    run_all(issue)

    refused = Delivery.objects.get(issue=issue, email="reader1@example.org")
    assert refused.status == Delivery.Status.FAILED
    (event,) = DeliveryEvent.objects.filter(delivery=refused)
    assert (event.kind, event.esp) == ("bounced", "smtp")
    assert "550 5.1.1 No such user" in event.description
    (entry,) = Suppression.objects.active()
    assert (entry.email, entry.reason) == ("reader1@example.org", Suppression.Reason.BOUNCED)
    ended = Subscription.objects.get(subscriber__email="reader1@example.org")
    assert ended.status == Subscription.Status.BOUNCED
    # the 450 is retried by the send itself, and counts for nothing here
    busy = Delivery.objects.get(issue=issue, email="reader2@example.org")
    assert busy.status == Delivery.Status.QUEUED
    assert not DeliveryEvent.objects.filter(email="reader2@example.org").exists()


def test_a_refusal_of_our_sender_suppresses_nobody(issue, make_subscribers, sink):
    make_subscribers(2)
    sink.reject_sender = "553 5.7.1 Sender address rejected"
    services.send_start(issue=issue)

    run_all(issue)

    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.QUEUED}
    assert not DeliveryEvent.objects.exists()
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("reply", "bounced"),
    [
        ("SMTP 550 5.1.1 <a@example.org>: Recipient address rejected: User unknown", True),
        ("SMTP 550 5.2.1 Mailbox disabled", True),
        ("SMTP 553 5.1.3 Bad destination mailbox address syntax", True),
        ("SMTP 550 No such user here", True),
        ("SMTP 554 5.7.1 <a@example.org>: Relay access denied", False),
        ("SMTP 550 5.7.1 Message rejected as spam", False),
        (
            "SMTP 553 5.1.8 <bounces+1.x@b.example>: Sender address rejected: Domain not found",
            False,
        ),
        ("SMTP 550 Sender address rejected", False),
        ("SMTP 552 5.2.2 Mailbox full", False),
    ],
)
def test_only_a_refusal_of_the_recipients_address_counts_as_a_bounce(reply, bounced):
    assert policy.refuses_recipient(reply) is bounced


def test_a_relay_that_denies_relaying_at_rcpt_suppresses_nobody(issue, make_subscribers, sink):
    make_subscribers(3)
    for n in range(3):
        sink.reject[f"reader{n}@example.org"] = "554 5.7.1 Relay access denied"
    services.send_start(issue=issue)

    run_all(issue)

    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.FAILED}
    assert not DeliveryEvent.objects.exists()
    assert not Suppression.objects.exists()
