"""The bounce mailbox over IMAP (imapclient) against a real IMAP server, Dovecot in a
folder of its own: process_bounces and beat's poll read every message, move the read
ones to "Processed" and the unreadable ones to "Kept", and read nothing twice."""

from __future__ import annotations

import io
import os
import threading

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection
from imapclient import IMAPClient

from delivery import tasks, verp
from delivery.models import BounceMessage, DeliveryEvent
from issues.models import Issue
from subscriptions.models import Suppression
from tests.factories import IssueFactory
from tests.helpers import dovecot_missing, running_dovecot, sent_delivery

pytestmark = pytest.mark.django_db

DOMAIN = "bounce.example.org"
PASSWORD = "imap-secret"


def report(to: str, address: str) -> bytes:
    return (
        f"To: {to}\r\nFrom: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail\r\n"
        f"Message-Id: <{abs(hash(to))}.report@mx.example.net>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="XX"\r\n\r\n'
        "--XX\r\nContent-Type: text/plain\r\n\r\nNo such user.\r\n"
        "--XX\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--XX--\r\n"
    ).encode()


@pytest.fixture
def imap(settings):
    reason = dovecot_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and Dovecot cannot run: {reason}")
        pytest.skip(reason)
    with running_dovecot(PASSWORD) as (port, _log):
        settings.BOUNCE_IMAP_URL = f"imap://bounces:{PASSWORD}@127.0.0.1:{port}/INBOX"
        settings.BOUNCE_DOMAIN = DOMAIN
        client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10)
        client.login("bounces", PASSWORD)
        try:
            yield client
        finally:
            client.logout()


def run_command() -> str:
    out = io.StringIO()
    call_command("process_bounces", stdout=out)
    return out.getvalue()


def messages(client: IMAPClient, folder: str) -> list[bytes]:
    client.select_folder(folder)
    found = client.fetch(client.search(["NOT", "DELETED"]), ["BODY.PEEK[]"])
    return [data[b"BODY[]"] for _, data in sorted(found.items())]


def test_reports_are_read_moved_and_never_counted_twice(imap, publication):
    issue = IssueFactory(volume__publication=publication, status=Issue.Status.SENT)
    delivery = sent_delivery(issue, "missing@example.org")
    good = report(verp.envelope_sender(default="", delivery_id=delivery.pk), delivery.email)
    forged = report(f"bounces+{delivery.pk}.forged@{DOMAIN}", delivery.email)
    imap.append("INBOX", good)
    imap.append("INBOX", forged)

    out = io.StringIO()
    call_command("process_bounces", stdout=out)

    assert "2 message(s) read: 1 counted" in out.getvalue()
    assert "kept aside: bad VERP signature" in out.getvalue()
    assert Suppression.objects.active().get().email == "missing@example.org"
    assert messages(imap, "INBOX") == []
    assert messages(imap, "Processed") == [good]
    assert messages(imap, "Kept") == [forged]
    assert BounceMessage.objects.get(outcome="kept").kept_in == "IMAP folder Kept"

    # the same report again, read by beat's poll: nothing counted twice
    imap.append("INBOX", good)
    assert tasks.bounces_poll() == {"read": 1, "counted": 0, "kept": 0}
    assert DeliveryEvent.objects.count() == 1
    assert len(messages(imap, "Processed")) == 2


def test_a_refused_login_is_named(imap, settings):
    settings.BOUNCE_IMAP_URL = settings.BOUNCE_IMAP_URL.replace(PASSWORD, "wrong")
    with pytest.raises(CommandError, match="MONITOR_BOUNCE_IMAP_URL"):
        call_command("process_bounces", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="two connections writing at once need PostgreSQL",
)
def test_while_one_run_reads_the_mailbox_another_is_told_so(imap, publication):
    """An operator's process_bounces while beat's poll runs: the second is refused with
    a message, the first reads every report once and moves each once."""
    issue = IssueFactory(volume__publication=publication, status=Issue.Status.SENT)
    for n in range(20):
        delivery = sent_delivery(issue, f"missing{n}@example.org")
        verp_address = verp.envelope_sender(default="", delivery_id=delivery.pk)
        imap.append("INBOX", report(verp_address, delivery.email))
    reading, answered = threading.Event(), threading.Event()
    summaries: list[dict] = []
    errors: list[BaseException] = []

    def beat_poll() -> None:
        try:
            with connection.execute_wrapper(wait_at_the_first_report):
                summaries.append(tasks.bounces_poll())
        except BaseException as exc:
            errors.append(exc)
        finally:
            reading.set()
            connection.close()

    def wait_at_the_first_report(execute, sql, params, many, context):
        if not reading.is_set() and BounceMessage._meta.db_table in sql:
            reading.set()
            answered.wait(timeout=30)  # the operator's run comes now
        return execute(sql, params, many, context)

    poll = threading.Thread(target=beat_poll)
    poll.start()
    assert reading.wait(timeout=30)
    try:
        with pytest.raises(CommandError, match="another run is reading the bounce mailbox"):
            run_command()
    finally:
        answered.set()
        poll.join(timeout=120)

    assert errors == []
    assert summaries == [{"read": 20, "counted": 20, "kept": 0}]
    assert DeliveryEvent.objects.filter(kind="bounced").count() == 20
    assert messages(imap, "INBOX") == []
    assert len(messages(imap, "Processed")) == 20
    # the lock is given back: the next run reads
    assert "0 message(s) read" in run_command()
