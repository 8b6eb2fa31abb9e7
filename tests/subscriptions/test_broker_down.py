"""Invitations and reminders claimed while the broker refuses their emails are given
back, to go on the next try, rather than marked as sent."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from subscriptions.models import Subscription
from tests.helpers import CLOSED_BROKER, child_env, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)

Status = Subscription.Status


def run_without_broker(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        env=child_env(CELERY_BROKER_URL=CLOSED_BROKER),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_invitations_not_queued_stay_uninvited(publication):
    pending = [
        make_subscription(publication, email=f"r{n}@example.org", status=Status.PENDING)
        for n in range(3)
    ]
    done = run_without_broker(
        "from subscriptions.invitations import invitations_send\n"
        "from subscriptions.models import Subscription\n"
        "invitations_send(subscriptions=list(Subscription.objects.all()))"
    )
    assert done.returncode != 0 and "OperationalError" in done.stderr, done.stderr
    assert [s.invited_at for s in Subscription.objects.filter(pk__in=[s.pk for s in pending])] == [
        None
    ] * 3


def test_reminders_not_queued_are_given_back(publication):
    first = timezone.now() - timedelta(days=30)
    second_due = make_subscription(publication, email="ann@example.org", status=Status.PENDING)
    first_due = make_subscription(publication, email="bob@example.org", status=Status.PENDING)
    Subscription.objects.filter(pk=second_due.pk).update(
        invited_at=first, reminders_sent=1, reminded_at=first + timedelta(days=7)
    )
    Subscription.objects.filter(pk=first_due.pk).update(
        invited_at=timezone.now() - timedelta(days=8)
    )
    done = run_without_broker(
        "from subscriptions.invitations import invitation_reminders_send\n"
        "invitation_reminders_send()"
    )
    assert done.returncode != 0 and "OperationalError" in done.stderr, done.stderr
    rows = dict(Subscription.objects.values_list("subscriber__email", "reminders_sent"))
    assert rows == {"ann@example.org": 1, "bob@example.org": 0}
    second_due.refresh_from_db()
    assert second_due.reminded_at == first + timedelta(days=7)
