"""Bounces without an ESP, end to end through a real MTA: an issue sent over plain SMTP
through Postfix (its own configuration, relaying to an aiosmtpd server that refuses some
readers with 550 and others with 450), Postfix's own delivery reports returned to the
VERP addresses and delivered to a Maildir, and `process_bounces` suppressing the readers
who do not exist, not those whose mailbox was only busy, within one run."""

from __future__ import annotations

import io
import mailbox
import os

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command

from delivery import reports, services
from delivery.models import Delivery, DeliveryEvent, SendJob
from issues.models import Issue
from subscriptions.models import Subscription, Suppression
from tests.factories import IssueFactory
from tests.helpers import Sink, free_port, postfix_missing, run_all, running_postfix, wait_for

pytestmark = pytest.mark.django_db

DOMAIN = "bounce.test.example"
MISSING = ["reader1@example.org", "reader3@example.org"]
BUSY = ["reader2@example.org"]


@pytest.fixture
def postfix_with_mailbox():
    """Postfix relaying to an aiosmtpd sink and delivering reports for DOMAIN to a
    Maildir: (sink, Postfix's port, the Maildir, the log)."""
    reason = postfix_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and Postfix cannot run: {reason}")
        pytest.skip(reason)
    sink = Sink()
    for address in MISSING:
        sink.reject[address] = f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
    for address in BUSY:
        sink.reject[address] = "450 4.2.1 Mailbox busy, try again later"
    relay_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=relay_port)
    controller.start()
    try:
        with running_postfix(relay_port, maildir_domain=DOMAIN) as (port, log):
            yield sink, port, log.parent / "mail" / "bounces", log
    finally:
        controller.stop()


def test_postfix_reports_suppress_the_missing_readers_and_not_the_busy_one(
    issue, make_subscribers, settings, postfix_with_mailbox
):
    sink, port, maildir, log = postfix_with_mailbox
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 10
    settings.BOUNCE_DOMAIN = DOMAIN
    make_subscribers(6)
    services.send_start(issue=issue)

    run_all(issue)

    # Postfix took every message; the relay refused three of them
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == 6
    try:
        wait_for(lambda: len(sink.messages) >= 3, timeout=60)
        wait_for(
            lambda: (maildir / "new").is_dir() and len(os.listdir(maildir / "new")) >= 3,
            timeout=60,
        )
    except AssertionError:
        raise AssertionError(f"no reports from Postfix:\n{log.read_text()}") from None
    reports_in_box = [m for m in mailbox.Maildir(str(maildir), factory=None).iterkeys()]
    assert len(reports_in_box) == 3

    out = io.StringIO()
    call_command("process_bounces", "--maildir", str(maildir), stdout=out)

    assert "3 message(s) read: 3 counted" in out.getvalue(), out.getvalue()
    suppressed = sorted(Suppression.objects.active().values_list("email", flat=True))
    assert suppressed == MISSING
    ended = Subscription.objects.filter(status=Subscription.Status.BOUNCED)
    assert sorted(ended.values_list("subscriber__email", flat=True)) == MISSING
    busy = DeliveryEvent.objects.get(email=BUSY[0])
    assert busy.kind == "deferred" and "4.2.1" in busy.description
    assert (
        sorted(DeliveryEvent.objects.filter(kind="bounced").values_list("email", flat=True))
        == MISSING
    )
    # every report was moved out of the inbox; a second run reads nothing
    assert mailbox.Maildir(str(maildir), factory=None).keys() == []
    out = io.StringIO()
    call_command("process_bounces", "--maildir", str(maildir), stdout=out)
    assert out.getvalue().startswith("0 message(s) read")

    # the issue's report shows the bounces; the next issue leaves the missing readers out
    report = reports.issue_report(issue=issue, job=SendJob.objects.get(issue=issue))
    assert report.figure("bounced") == 2
    following = IssueFactory(
        volume=issue.volume, number=issue.number + 1, status=Issue.Status.APPROVED
    )
    assert reports.audience_size(following) == 4
