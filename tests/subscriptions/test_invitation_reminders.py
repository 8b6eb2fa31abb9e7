"""Reminders of an unanswered invitation: on the publication's days, each exactly once
(even with sweeps racing), and never after an answer, a bounce or the expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitor_site.celery import app as celery_app
from subscriptions import invitations, tasks
from subscriptions.models import Subscription
from subscriptions.services import subscription_unsubscribe, suppression_add
from tests.helpers import make_subscription

Status = Subscription.Status


def invite(publication, address: str, *, at=None) -> Subscription:
    subscription = make_subscription(publication, email=address, status=Status.PENDING)
    with time_machine.travel(at or timezone.now(), tick=False):
        invitations.invitations_send(subscriptions=[subscription])
    subscription.refresh_from_db()
    return subscription


def sweep(at) -> int:
    with time_machine.travel(at, tick=False):
        return tasks.invitation_reminders()


def subjects(address: str) -> list[str]:
    return [m.subject for m in mail.outbox if m.to == [address]]


def test_reminders_go_on_the_publications_days_and_never_twice(publication, commit):
    with commit():
        subscription = invite(publication, "ann@example.org")
    start = subscription.invited_at
    with commit():
        swept = [
            sweep(start + timedelta(days=days, hours=hours))
            for days, hours in [(6, 23), (7, 1), (7, 2), (20, 0), (21, 1), (21, 2), (40, 0)]
        ]
    assert swept == [0, 1, 0, 0, 1, 0, 0]
    assert subjects("ann@example.org") == [
        "The Monitor is moving to email: keep receiving it",
        "Reminder: The Monitor is moving to email: keep receiving it",
        "Reminder: The Monitor is moving to email: keep receiving it",
    ]
    assert "We may remind you once more." in mail.outbox[1].body
    assert "This is our last message about it." in mail.outbox[2].body
    subscription.refresh_from_db()
    assert subscription.reminders_sent == 2
    assert subscription.reminded_at == start + timedelta(days=21, hours=1)


def test_each_publication_sets_its_own_days(publication, other_publication, commit):
    publication.invitation_first_reminder_days, publication.invitation_second_reminder_days = (
        3,
        None,
    )
    publication.save()
    other_publication.invitation_first_reminder_days = None
    other_publication.invitation_second_reminder_days = None
    other_publication.save()
    with commit():
        start = invite(publication, "ann@example.org").invited_at
        invite(other_publication, "bob@example.org", at=start)
        swept = [sweep(start + timedelta(days=d)) for d in (2, 3, 4, 30)]
    assert swept == [0, 1, 0, 0]
    assert len(subjects("ann@example.org")) == 2
    assert len(subjects("bob@example.org")) == 1


def test_after_a_long_pause_one_sweep_sends_one_reminder(publication, commit):
    with commit():
        start = invite(publication, "ann@example.org").invited_at
        swept = [sweep(start + timedelta(days=d)) for d in (30, 30.1, 43, 44.1)]
    # the second reminder keeps its 14 days after the first
    assert swept == [1, 0, 0, 1]


def test_an_answer_a_bounce_or_the_expiry_stops_the_reminders(publication, commit):
    with commit():
        start = invite(publication, "waiting@example.org").invited_at
        accepted = invite(publication, "yes@example.org", at=start)
        declined = invite(publication, "no@example.org", at=start)
        invite(publication, "bounced@example.org", at=start)
        invite(publication, "old@example.org", at=start - timedelta(days=70))
    invitations.invitation_accept(subscription=accepted, ip=None)
    subscription_unsubscribe(subscription=declined, reason="invitation: no thanks")
    suppression_add(email="bounced@example.org", reason="bounced", source="esp")
    mail.outbox.clear()

    with commit():
        assert sweep(start + timedelta(days=8)) == 1
    assert [m.to for m in mail.outbox] == [["waiting@example.org"]]


def test_the_beat_runs_the_reminder_sweep():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if "invitation" in e["task"]]
    assert [e["task"] for e in entries] == ["subscriptions.tasks.invitation_reminders"]
    assert entries[0]["task"] in celery_app.tasks
    assert entries[0]["schedule"] <= 3600


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="two connections writing at once need PostgreSQL",
)
def test_two_sweeps_at_once_send_each_reminder_exactly_once(publication):
    start = timezone.now()
    readers = [f"reader{n}@example.org" for n in range(40)]
    for address in readers:
        invite(publication, address, at=start)
    mail.outbox.clear()
    due = start + timedelta(days=8)
    barrier = threading.Barrier(2)
    claimed: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            claimed.append(invitations.invitation_reminders_send(now=due))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sum(claimed) == 40 and len(claimed) == 2
    assert sorted(m.to[0] for m in mail.outbox) == sorted(readers)
    assert set(Subscription.objects.values_list("reminders_sent", flat=True)) == {1}


def test_a_sweep_takes_as_many_queries_for_30_reminders_as_for_3(publication):
    start = timezone.now()
    for n in range(33):
        invite(publication, f"reader{n}@example.org", at=start)
    later = Subscription.objects.order_by("pk").values_list("pk", flat=True)[3:]
    Subscription.objects.filter(pk__in=list(later)).update(invited_at=start + timedelta(days=1))
    counts = []
    for due, reminders in [(timedelta(days=7, hours=1), 3), (timedelta(days=8, hours=1), 30)]:
        with CaptureQueriesContext(connection) as queries:
            assert invitations.invitation_reminders_send(now=start + due) == reminders
        counts.append(len(queries))
    assert counts[0] == counts[1] < 15
