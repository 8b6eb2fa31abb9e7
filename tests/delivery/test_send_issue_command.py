from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from delivery import sweep
from delivery.models import Delivery, SendJob
from issues.models import Issue
from tests.factories import IssueFactory
from tests.helpers import CLOSED_BROKER, ROOT, child_env, purge_queues, worker_env


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("send_issue", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_send_issue_wait_reports_counts_and_a_second_call_sends_nothing(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    make_subscribers(300)
    celery_worker_process(**worker_env(port))

    out, err = run("monitor", "6", "11", "--wait")

    assert "Sending The Monitor, Volume 6, Issue 11 to 300 subscribers." in out
    assert "sent: 300" in out and "failed: 0" in out
    assert "300/300" in err  # the progress bar reached the end
    assert len(sink.messages) == 300
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT

    out, _ = run("monitor", "6", "11", "--wait")
    assert "already sent; nothing changed" in out
    assert len(sink.messages) == 300


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_send_issue_wait_exits_non_zero_when_a_message_failed(
    issue, make_subscribers, smtp_sink, celery_worker_process
):
    sink, port = smtp_sink
    make_subscribers(5)
    sink.reject["reader3@example.org"] = "550 5.1.1 No such user"
    celery_worker_process(**worker_env(port))

    with pytest.raises(CommandError, match="1 messages failed"):
        run("monitor", "6", "11", "--wait")
    assert Delivery.objects.filter(status="failed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_send_issue_wait_gives_up_with_the_reason_when_no_worker_sends(issue, make_subscribers):
    make_subscribers(5)
    connection.close()  # the command runs in its own process, on the same database
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "manage.py", "send_issue", "monitor", "6", "11", "--wait"],
            cwd=ROOT,
            env=child_env(MONITOR_DELIVERY_STALL_SECONDS="3"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        purge_queues()  # the chunks it handed out, which no worker took
    took = time.monotonic() - started

    assert result.returncode != 0
    assert "Sending The Monitor, Volume 6, Issue 11 to 5 subscribers." in result.stdout
    # at once, a warning; past the threshold, the reason it gives up
    assert (
        "No worker consumes the send queue, so nothing of this send goes out: "
        "start one with `celery -A monitor_site worker`." in result.stderr
    )
    reason = re.search(
        r"CommandError: No message of this send has gone out for (\d+) seconds, and no worker "
        r"consumes the send queue: start one with `celery -A monitor_site worker`\.",
        result.stderr,
    )
    assert reason, result.stderr
    assert 3 <= int(reason[1]) < 10
    assert took < 60
    assert Delivery.objects.filter(issue=issue, status="queued").count() == 5


@pytest.mark.django_db
def test_send_issue_test_to_sends_one_copy(issue, make_subscribers, smtp_settings):
    make_subscribers(3)
    out, _ = run("monitor", "6", "11", "--test-to", "editor@example.org")
    assert "Sent a test copy" in out
    assert smtp_settings.recipients() == ["editor@example.org"]
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.APPROVED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("monitor", "6", "99"), "No issue monitor volume 6 number 99"),
        (("nosuch", "6", "11"), "No issue nosuch"),
        (("monitor", "6", "11", "--test-to", "not-an-address"), "not an email address"),
    ],
)
def test_send_issue_bad_input_gets_a_clear_error(issue, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


@pytest.mark.django_db
def test_send_issue_refuses_a_draft(db):
    IssueFactory(number=11, status=Issue.Status.DRAFT)
    with pytest.raises(CommandError, match="draft"):
        run("monitor", "6", "11")


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_send_starts_and_the_sweeper_hands_it_out(issue, make_subscribers):
    make_subscribers(5)

    done = subprocess.run(
        [sys.executable, "manage.py", "send_issue", "monitor", "6", "11"],
        cwd=ROOT,
        env=child_env(CELERY_BROKER_URL=CLOSED_BROKER),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stderr
    assert "the broker (CELERY_BROKER_URL) does not answer" in done.stderr
    assert "the send is on and its messages are queued" in done.stderr
    assert "Traceback" not in done.stderr
    assert SendJob.objects.get(issue=issue).state == SendJob.State.RUNNING
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.QUEUED).count() == 5
    # The broker answers again; a lease's time later, the sweeper hands the rows out.
    lease_ago = timezone.now() - timedelta(seconds=settings.DELIVERY_LEASE_SECONDS + 1)
    SendJob.objects.filter(issue=issue).update(handed_out_at=lease_ago)
    try:
        assert sweep.sweep()["dispatched"] == 1
    finally:
        purge_queues()
