"""process_bounces over a Maildir and standard input: reports to a VERP address tie to
their delivery, each message is moved out of the inbox once read and never counted
twice, temporary failures count like an ESP's soft bounces (the same policy), and
forged or malformed mail changes nothing and is kept aside with the reason."""

from __future__ import annotations

import io
import mailbox
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from anymail.signals import AnymailTrackingEvent
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from delivery import bounces, feedback, verp
from delivery.models import ERASED_EMAIL, BounceMessage, Delivery, DeliveryEvent
from issues.models import Issue
from subscriptions.models import Subscription, Suppression
from tests.factories import IssueFactory
from tests.helpers import make_subscription, member_of

pytestmark = pytest.mark.django_db

DOMAIN = "bounce.example.org"
Outcome = BounceMessage.Outcome
Reason = Suppression.Reason


def report(
    to: str, *, address: str, status: str = "5.1.1", action: str = "failed", msgid: str = ""
) -> bytes:
    """A delivery report as Postfix writes one, sent to `to`, about `address`."""
    msgid = msgid or f"<{abs(hash((to, address, status)))}@mx.example.net>"
    return f"""\
Return-Path: <>
Delivered-To: {to}
Date: Mon, 30 Nov 2026 09:14:01 +0000
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
Message-Id: {msgid}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="XX"

--XX
Content-Type: text/plain; charset=us-ascii

<{address}>: host mx.example.net said: {status[0]}50 {status} No (in reply to RCPT TO)

--XX
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {address}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {status[0]}50 {status} No

--XX--
""".replace("\n", "\r\n").encode()


@pytest.fixture(autouse=True)
def bounce_domain(settings, tmp_path):
    settings.BOUNCE_DOMAIN = DOMAIN
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def sent(publication):
    """A sent delivery of a new issue of the publication to `address`."""
    issues: list[Issue] = []

    def make(address: str = "reader@example.org", *, new_issue: bool = False) -> Delivery:
        if new_issue or not issues:
            issues.append(
                IssueFactory(
                    volume__publication=publication,
                    number=len(issues) + 1,
                    status=Issue.Status.SENT,
                )
            )
        subscription = Subscription.objects.filter(subscriber__email=address).first()
        if subscription is None:
            subscription = make_subscription(publication, address)
        return Delivery.objects.create(
            issue=issues[-1],
            subscriber=subscription.subscriber,
            subscription=subscription,
            email=address,
            status=Delivery.Status.SENT,
            sent_at=timezone.now() - timedelta(hours=1),
        )

    return make


def verp_of(delivery: Delivery) -> str:
    return verp.envelope_sender(default="", delivery_id=delivery.pk)


@pytest.fixture
def maildir(tmp_path) -> Path:
    path = tmp_path / "Maildir"
    mailbox.Maildir(str(path), create=True)
    return path


def deliver(path: Path, raw: bytes) -> None:
    mailbox.Maildir(str(path), factory=None).add(raw)


def folder(path: Path, name: str) -> list[bytes]:
    box = mailbox.Maildir(str(path), factory=None).get_folder(name)
    return [box.get_bytes(key) for key in box.iterkeys()]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("process_bounces", *args, stdout=out)
    return out.getvalue()


def test_a_report_to_a_verp_address_bounces_that_delivery(sent, maildir):
    delivery = sent("reader@example.org")
    # forwarded mail: the address that failed is not the one we sent to
    raw = report(verp_of(delivery), address="reader.forwarded@elsewhere.example")
    deliver(maildir, raw)

    output = run("--maildir", str(maildir))

    assert "1 message(s) read: 1 counted" in output and "1 address(es) suppressed" in output
    (event,) = DeliveryEvent.objects.all()
    assert (event.delivery_id, event.kind, event.esp) == (delivery.pk, "bounced", "bounce")
    assert "5.1.1" in event.description
    assert Suppression.objects.active().get().email == "reader@example.org"
    assert mailbox.Maildir(str(maildir)).keys() == []
    assert folder(maildir, "Processed") == [raw]

    # read again (nothing left), then the same message put back: counted once
    assert "0 message(s) read" in run("--maildir", str(maildir))
    deliver(maildir, raw)
    assert "1 read before" in run("--maildir", str(maildir))
    assert DeliveryEvent.objects.count() == 1


def test_a_temporary_failure_counts_and_three_on_different_issues_suppress(sent, maildir):
    first = sent()
    deliver(maildir, report(verp_of(first), address=first.email, status="4.2.2"))
    run("--maildir", str(maildir))
    assert DeliveryEvent.objects.get().kind == "deferred"
    assert not Suppression.objects.exists()

    second = sent(new_issue=True)
    deliver(maildir, report(verp_of(second), address=second.email, status="4.4.7"))
    run("--maildir", str(maildir))
    assert not Suppression.objects.exists()

    third = sent(new_issue=True)
    deliver(maildir, report(verp_of(third), address=third.email, status="4.2.2"))
    run("--maildir", str(maildir))
    assert Suppression.objects.active().get().reason == Reason.BOUNCED


def test_webhook_soft_bounces_and_mailbox_temporary_failures_add_up(sent, maildir):
    """One policy for both: two soft bounces from an ESP and one temporary failure from
    the bounce mailbox make three in a row."""
    for number in (1, 2):
        delivery = sent(new_issue=number > 1)
        feedback.event_record(
            esp="postmark",
            event=AnymailTrackingEvent(
                event_type="bounced",
                recipient=delivery.email,
                metadata={"delivery_id": delivery.pk},
                esp_event={"Type": "SoftBounce"},
                timestamp=timezone.now(),
                event_id=f"soft-{number}",
            ),
        )
    assert not Suppression.objects.exists()
    third = sent(new_issue=True)
    deliver(maildir, report(verp_of(third), address=third.email, status="4.2.2"))

    run("--maildir", str(maildir))

    assert Suppression.objects.active().get().email == third.email


def test_a_delay_notice_changes_nothing(sent, maildir):
    delivery = sent()
    deliver(
        maildir, report(verp_of(delivery), address=delivery.email, status="4.4.1", action="delayed")
    )

    output = run("--maildir", str(maildir))

    assert "1 without consequence" in output
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()
    assert len(folder(maildir, "Processed")) == 1


def forged_signature(delivery: Delivery) -> bytes:
    key = verp_of(delivery).removeprefix("bounces+").partition("@")[0]
    delivery_id, _, signature = key.partition(".")
    forged = f"bounces+{delivery_id}.{signature[::-1]}@{DOMAIN}"
    return report(forged, address=delivery.email)


def no_report(delivery: Delivery) -> bytes:
    return (
        f"To: {verp_of(delivery)}\r\nFrom: someone@example.net\r\nSubject: hello\r\n"
        "Message-ID: <plain.1@example.net>\r\n\r\nJust a note, no report in it.\r\n"
    ).encode()


def five_megabytes(delivery: Delivery) -> bytes:
    raw = report(verp_of(delivery), address=delivery.email)
    return raw.replace(
        b"--XX--", b"--XX\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 76 * 70_000 + b"\r\n--XX--"
    )


def non_ascii_headers(delivery: Delivery) -> bytes:
    return (
        "To: bounces@" + DOMAIN + "\r\nFrom: Jürgen Ünlü <j@exämple.net>\r\n"
        "Subject: =?utf-8?q?broken=ZZ?= Zurückgewiesen: Ihre Nachricht ✉\r\n"
        "Message-ID: <ünicode@exämple.net>\r\n\r\nUnzustellbar.\r\n"
    ).encode("utf-8")


def unknown_delivery(delivery: Delivery) -> bytes:
    return report(
        verp.envelope_sender(default="", delivery_id=delivery.pk + 1000), address=delivery.email
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (forged_signature, "bad VERP signature"),
        (no_report, "no delivery report in it"),
        (five_megabytes, "too large for a delivery report"),
        (non_ascii_headers, "no delivery report in it"),
        (unknown_delivery, "which does not exist"),
    ],
    ids=["bad-signature", "no-report", "5-MB", "non-ASCII-headers", "no-such-delivery"],
)
def test_forged_or_malformed_mail_changes_nothing_and_is_kept_aside(make, reason, sent, maildir):
    delivery = sent()
    raw = make(delivery)
    deliver(maildir, raw)

    output = run("--maildir", str(maildir))

    assert "1 kept aside" in output and "kept aside: " in output and reason in output
    assert not DeliveryEvent.objects.exists()
    assert not Suppression.objects.exists()
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE
    assert folder(maildir, "Kept") == [raw]
    assert mailbox.Maildir(str(maildir)).keys() == []
    kept = BounceMessage.objects.get()
    assert kept.outcome == Outcome.KEPT and reason in kept.reason
    assert kept.kept_in.endswith(".Kept")


def test_stdin_reads_one_message_and_keeps_a_bad_one_in_var(sent, monkeypatch, settings):
    delivery = sent()
    monkeypatch.setattr(
        sys,
        "stdin",
        io.TextIOWrapper(io.BytesIO(report(verp_of(delivery), address=delivery.email))),
    )
    assert "1 counted" in run("--stdin")
    assert Suppression.objects.active().get().email == delivery.email

    bad = forged_signature(sent("other@example.org", new_issue=True))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(bad)))
    assert "1 kept aside" in run("--stdin")
    box = mailbox.Maildir(str(Path(settings.VAR_DIR) / "bounces"), factory=None)
    kept = box.get_folder("Kept")
    assert [kept.get_bytes(k) for k in kept.iterkeys()] == [bad]


def test_the_pipe_can_pass_the_verp_recipient(sent, monkeypatch):
    delivery = sent()
    # the report's own headers do not show the VERP address
    raw = report("newsletter@example.org", address="forwarded@elsewhere.example")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))

    run("--stdin", "--recipient", verp_of(delivery))

    assert DeliveryEvent.objects.get().delivery_id == delivery.pk


def test_bad_arguments_are_named(tmp_path, settings):
    settings.BOUNCE_IMAP_URL = ""
    with pytest.raises(CommandError, match="not a Maildir"):
        run("--maildir", str(tmp_path / "nothing"))
    with pytest.raises(CommandError, match="MONITOR_BOUNCE_IMAP_URL"):
        run()
    with pytest.raises(CommandError, match="--recipient goes with --stdin"):
        run("--maildir", str(tmp_path), "--recipient", "x@example.org")


def test_the_subscriber_page_and_the_bounce_list_show_what_came_back(sent, maildir, client):
    """To Subscription staff, who handle bounces; not to analysts."""
    client.force_login(member_of("Analysts", "ann"))
    assert client.get(reverse("admin:delivery_bouncemessage_changelist")).status_code == 403
    client.force_login(member_of("Subscription staff", "sam"))
    delivery = sent()
    deliver(maildir, report(verp_of(delivery), address=delivery.email))
    deliver(maildir, no_report(sent("other@example.org")))
    run("--maildir", str(maildir))

    page = client.get(
        reverse("admin:subscriptions_subscriber_change", args=[delivery.subscriber_id])
    )
    assert page.status_code == 200
    history = page.content.decode()
    assert "Hard bounce" in history  # the suppression
    assert "Bounced (bounced)" in history and "via bounce: permanent failure 5.1.1" in history

    listing = client.get(reverse("admin:delivery_bouncemessage_changelist"))
    assert listing.status_code == 200
    assert "no delivery report in it" in listing.content.decode()
    assert "1 permanent failure(s)" in listing.content.decode()


def test_a_report_about_an_erased_reader_changes_nothing(sent, maildir):
    delivery = sent()
    Delivery.objects.filter(pk=delivery.pk).update(email=ERASED_EMAIL, subscriber=None)
    deliver(maildir, report(verp_of(delivery), address="reader@example.org"))

    assert "1 without consequence" in run("--maildir", str(maildir))
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("5.1.1", "bounced"),
        ("5.0.0", "bounced"),
        ("5.4.4", "bounced"),
        ("4.2.2", "deferred"),
        ("5.7.1", "deferred"),  # relaying denied, a spam block: about us or the message
        ("5.7.0", "deferred"),  # our relay wants authentication: every message says so
        ("5.3.4", "deferred"),  # message too big
    ],
)
def test_only_a_failure_of_the_address_is_permanent(status, kind, sent, maildir):
    delivery = sent()
    deliver(maildir, report(verp_of(delivery), address=delivery.email, status=status))

    run("--maildir", str(maildir))

    assert DeliveryEvent.objects.get().kind == kind
    assert Suppression.objects.exists() is (kind == "bounced")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="two connections writing at once need PostgreSQL",
)
def test_two_readers_of_the_same_message_at_once_count_it_once(sent):
    """An operator's process_bounces while beat polls the same mailbox: the second
    reader of a message waits for the first and finds it read."""
    delivery = sent("reader@example.org")
    raw = report(verp_of(delivery), address=delivery.email, status="4.2.2")
    first_read, finish = threading.Event(), threading.Event()
    verdicts: dict[str, bounces.Verdict] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():  # held open while the second reads
                verdicts["first"] = bounces.message_process(raw, source="imap")
                first_read.set()
                finish.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            first_read.set()
            connection.close()

    def second() -> None:
        try:
            first_read.wait(timeout=30)
            verdicts["second"] = bounces.message_process(raw, source="maildir")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_read.wait(timeout=30)
    time.sleep(0.5)  # the second is reading by now
    finish.set()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert verdicts["first"].outcome == Outcome.COUNTED and not verdicts["first"].duplicate
    assert verdicts["second"].duplicate
    assert DeliveryEvent.objects.filter(kind="deferred").count() == 1
    assert BounceMessage.objects.get().source == "imap"
