"""Retention: a day after each limit, what is due is gone and nothing else is, and the
reports' figures stay as they were (the clock moved with time-machine)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from anymail.signals import AnymailTrackingEvent
from django.conf import settings
from django.utils import timezone

from delivery import feedback, reports, retention, tasks
from delivery.models import BounceMessage, Delivery, DeliveryEvent, EventTally, SendJob
from issues.models import Issue, Publication
from subscriptions import joining, services
from subscriptions.models import (
    ContactMessage,
    EmailCooldown,
    Subscriber,
    Subscription,
)
from tests.factories import IssueFactory
from tests.helpers import offline_reader, send_in_process

START = timezone.now().replace(microsecond=0)
Status = Subscription.Status


def day(n: int) -> time_machine.travel:
    return time_machine.travel(START + timedelta(days=n), tick=False)


def request(email: str, publications, ip: str = "192.0.2.1") -> Subscriber:
    return services.subscription_request(
        email=email, name="", organization="", publications=publications, ip=ip, form="web"
    )


def confirm(subscriber: Subscriber, ip: str = "192.0.2.2") -> None:
    nonce = Subscriber.objects.values_list("confirm_nonce", flat=True).get(pk=subscriber.pk)
    services.subscription_confirm(subscriber=subscriber, nonce=nonce, ip=ip)


def event(kind: str, delivery: Delivery, n: int, **extra) -> None:
    feedback.event_record(
        esp="postmark",
        event=AnymailTrackingEvent(
            event_type=kind,
            recipient=delivery.email,
            event_id=f"{kind}-{delivery.pk}-{n}",
            metadata={"delivery_id": str(delivery.pk)},
            timestamp=timezone.now(),
            **extra,
        ),
    )


@pytest.fixture
def world(publication):
    """Day 0: requests, readers, a sent issue with its events, a message, a join code."""
    other = Publication.objects.create(name="Fortnight", slug="fortnight")
    with day(0):
        unconfirmed = request("never@example.org", [publication])
        reader = request("reader@example.org", [publication], ip="192.0.2.10")
        confirm(reader, ip="192.0.2.11")
        request("reader@example.org", [other])  # a second publication, never confirmed
        ended = request("again@example.org", [publication])
        confirm(ended)
        services.subscription_unsubscribe(subscription=ended.subscriptions.get())
        request("again@example.org", [publication])  # asked again, not confirmed
        invited = Subscriber.objects.create(email="legacy@example.org", source="legacy-email")
        Subscription.objects.create(
            subscriber=invited, publication=publication, invited_at=timezone.now()
        )
        offline = offline_reader(publication, name="Postal Reader")
        joining.join_request(code=offline.join_code, email="typed@example.org")
        services.contact_message_create(
            name="Writer",
            email="writer@example.org",
            subject="Hello",
            body="A question.",
            publication=publication,
            ip="192.0.2.20",
        )
        issue = IssueFactory(
            volume__publication=publication, number=11, status=Issue.Status.APPROVED
        )
        send_in_process(issue)
        sent = Delivery.objects.get(issue=issue, email="reader@example.org")
        event("delivered", sent, 0)
        for n in range(3):  # one reader opening it three times
            event("opened", sent, n + 1, user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox")
        event("opened", sent, 4, user_agent="Mozilla/5.0")  # Apple's proxy
        event("clicked", sent, 5, click_url="https://example.org/")
    with day(20):
        recent = request("recent@example.org", [publication])
    return {
        "unconfirmed": unconfirmed,
        "reader": reader,
        "ended": ended,
        "invited": invited,
        "offline": offline,
        "issue": issue,
        "sent": sent,
        "recent": recent,
        "other": other,
    }


def figures(issue: Issue):
    report = reports.issue_report(issue=issue, job=SendJob.objects.get(issue=issue))
    return report.events, report.machine


def test_nothing_is_due_before_the_first_limit(world):
    with day(29):
        removed = retention.retention_apply()

    # one cooldown a mailbox that asked: never@, reader@, again@, recent@
    assert {k: v for k, v in removed.items() if v} == {"mailbox cooldowns": 4}
    assert Subscriber.objects.filter(email="never@example.org").exists()
    assert Subscriber.objects.get(pk=world["offline"].pk).join_email == "typed@example.org"


def test_unconfirmed_requests_and_their_people_go_after_30_days(world):
    with day(31):
        removed = retention.retention_apply()

    assert removed["unconfirmed requests"] == 2  # never@, and reader@'s second publication
    assert removed["subscribers left with nothing"] == 1
    assert removed["unconfirmed join requests"] == 1
    assert not Subscriber.objects.filter(email="never@example.org").exists()
    reader = Subscription.objects.filter(subscriber=world["reader"])
    assert list(reader.values_list("status", flat=True)) == [Status.ACTIVE]
    # asked on day 20, confirmed once before, invited: all stay
    assert world["recent"].subscriptions.get().status == Status.PENDING
    assert world["ended"].subscriptions.get().status == Status.PENDING
    assert world["invited"].subscriptions.get().status == Status.PENDING
    offline = Subscriber.objects.get(pk=world["offline"].pk)
    assert (offline.join_email, offline.join_requested_at, offline.name) == (
        None,
        None,
        "Postal Reader",
    )
    assert not EmailCooldown.objects.exists()


def test_ip_addresses_go_after_12_months_and_the_consent_stays(world):
    with day(364):
        retention.retention_apply()
    reader = Subscriber.objects.get(pk=world["reader"].pk)
    assert reader.consent_ip == "192.0.2.11"
    assert ContactMessage.objects.get().ip == "192.0.2.20"

    with day(366):
        removed = retention.retention_apply()

    assert removed["consent IP addresses"] == 2  # reader@ and again@ (confirmed on day 0)
    assert removed["contact message IP addresses"] == 1
    reader.refresh_from_db()
    assert reader.consent_ip is None
    assert reader.consent_at == START and reader.consent_form == "web"
    message = ContactMessage.objects.get()
    assert (message.ip, message.body) == (None, "A question.")


def test_opens_and_clicks_go_after_13_months_into_counts_that_keep_the_report(world):
    before = figures(world["issue"])
    assert before[0]["opened"] == (3, 1) and before[1]["opened"] == (1, 1)
    with day(300):
        event("opened", world["sent"], 9, user_agent="Firefox")  # a late open, kept longer

    with day(394):
        assert retention.retention_apply()["open and click events"] == 0
    with day(396):
        removed = retention.retention_apply()

    assert removed["open and click events"] == 5
    kept = DeliveryEvent.objects.filter(issue=world["issue"])
    assert sorted(kept.values_list("kind", flat=True)) == ["delivered", "opened"]
    events, machine = figures(world["issue"])
    assert events["opened"] == (4, 1)  # the reader counted once, with the late open kept
    assert events["clicked"] == (1, 1) and events["delivered"] == (1, 1)
    assert machine["opened"] == (1, 1)
    assert Delivery.objects.filter(issue=world["issue"]).count() == 1


def test_bounce_mailbox_records_go_after_13_months(world):
    Outcome = BounceMessage.Outcome
    with day(0):
        BounceMessage.objects.create(key="<a@mx>", source="imap", outcome=Outcome.COUNTED)
        BounceMessage.objects.create(key="<b@mx>", source="imap", outcome=Outcome.KEPT)
    with day(300):
        BounceMessage.objects.create(key="<c@mx>", source="stdin", outcome=Outcome.IGNORED)

    with day(394):
        assert retention.retention_apply()["bounce mailbox records"] == 0
    with day(396):
        assert retention.retention_apply()["bounce mailbox records"] == 2

    assert list(BounceMessage.objects.values_list("key", flat=True)) == ["<c@mx>"]


def test_events_go_a_batch_at_a_time_and_each_reader_is_counted_once(world, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 2)

    with day(396):
        assert retention.retention_apply()["open and click events"] == 5

    tallies = {
        (t.kind, t.machine): (t.events, t.people)
        for t in EventTally.objects.filter(issue=world["issue"])
    }
    assert tallies == {
        ("opened", False): (3, 1),
        ("opened", True): (1, 1),
        ("clicked", False): (1, 1),
    }


def test_the_daily_task_is_scheduled_and_says_what_it_removed(world, caplog):
    assert settings.CELERY_BEAT_SCHEDULE["retention"]["task"] == "delivery.tasks.retention"

    with day(31), caplog.at_level("INFO", logger="delivery.retention"):
        removed = tasks.retention()

    assert removed["unconfirmed requests"] == 2
    assert "unconfirmed requests: 2" in caplog.text
