"""delivery.feedback: which delivery an event is about, what it means for the address,
and that it is applied once. (The webhooks themselves: test_webhooks.py.)"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from anymail.signals import AnymailTrackingEvent
from django.db import connection
from django.utils import timezone

from delivery import feedback, policy, record
from delivery.models import Delivery, DeliveryEvent
from issues.models import Issue
from subscriptions.models import Subscription, SubscriptionEvent, Suppression
from tests.factories import IssueFactory

Kind = DeliveryEvent.Kind
Reason = Suppression.Reason
NOW = timezone.now()


def tracking(event_type: str, **kwargs) -> AnymailTrackingEvent:
    kwargs.setdefault("recipient", "reader0@example.org")
    kwargs.setdefault("timestamp", NOW)
    return AnymailTrackingEvent(event_type=event_type, **kwargs)


@pytest.fixture
def reader(make_subscribers) -> Subscription:
    (subscription,) = make_subscribers(1)
    return subscription


@pytest.fixture
def deliver(publication, reader):
    issues: dict[int, Issue] = {}

    def make(
        number: int,
        *,
        sent_at,
        email: str = "reader0@example.org",
        message_id: str = "",
        batch: list[int] | None = None,
    ):
        if number not in issues:
            issues[number] = IssueFactory(number=number, status=Issue.Status.SENT)
        subscription = Subscription.objects.select_related("subscriber").get(
            subscriber__email=email
        )
        delivery = Delivery.objects.create(
            issue=issues[number],
            subscriber=subscription.subscriber,
            subscription=subscription,
            email=email,
            status=Delivery.Status.SENT,
            sent_at=sent_at,
            esp_message_id=message_id,
        )
        if batch is None:
            record.message_ids_record(
                issue_id=delivery.issue_id, sent_by_id={message_id: [delivery.pk]}
            )
        else:
            batch.append(delivery.pk)
        return delivery

    return make


@pytest.fixture
def mailed(deliver) -> Delivery:
    """Issue 11 went to reader0 an hour before the events (found by the address)."""
    return deliver(11, sent_at=NOW - timedelta(hours=1))


# --- finding the delivery ---------------------------------------------------------------


def test_found_by_the_delivery_id_sent_as_metadata(deliver):
    older = deliver(10, sent_at=NOW - timedelta(days=14))
    deliver(11, sent_at=NOW - timedelta(days=1))
    found = feedback.delivery_find(
        metadata={"delivery_id": str(older.pk)}, message_id=None, email=older.email, at=NOW
    )
    assert found == older


def test_a_delivery_id_for_another_address_is_not_trusted(deliver, make_subscribers):
    make_subscribers(1, prefix="someone")
    theirs = deliver(11, sent_at=NOW - timedelta(hours=1), email="someone0@example.org")
    mine = deliver(12, sent_at=NOW - timedelta(hours=2))
    found = feedback.delivery_find(
        metadata={"delivery_id": str(theirs.pk)}, message_id=None, email=mine.email, at=NOW
    )
    assert found == mine


def test_a_batch_message_id_is_told_apart_by_the_recipient(deliver, make_subscribers):
    make_subscribers(1, prefix="someone")
    batch_id = "<20261128.1.BATCH@mg.example.org>"
    batch: list[int] = []
    deliver(11, sent_at=NOW, message_id=batch_id, batch=batch)
    theirs = deliver(
        11, sent_at=NOW, email="someone0@example.org", message_id=batch_id, batch=batch
    )
    deliver(12, sent_at=NOW, email="someone0@example.org")  # another issue, same reader
    record.message_ids_record(issue_id=theirs.issue_id, sent_by_id={batch_id: batch})
    found = feedback.delivery_find(
        metadata={}, message_id=batch_id.strip("<>"), email="someone0@example.org", at=NOW
    )
    assert found == theirs
    # Without a recipient a shared id names no single delivery.
    assert feedback.delivery_find(metadata={}, message_id=batch_id, email="", at=NOW) is None


def test_else_the_latest_delivery_sent_to_the_address_before_the_event(deliver):
    first = deliver(10, sent_at=NOW - timedelta(days=14))
    second = deliver(11, sent_at=NOW - timedelta(days=7))
    deliver(12, sent_at=NOW + timedelta(days=1))  # after the event
    find = feedback.delivery_find
    assert find(metadata={}, message_id="unknown", email=first.email, at=NOW) == second
    at = NOW - timedelta(days=10)
    assert find(metadata={}, message_id=None, email=first.email, at=at) == first
    at = NOW - timedelta(days=30)
    assert find(metadata={}, message_id=None, email=first.email, at=at) is None


def test_an_event_is_stored_against_its_delivery_and_issue(deliver):
    delivery = deliver(11, sent_at=NOW - timedelta(hours=1), message_id="pm-1")
    recorded = feedback.event_record(
        esp="Postmark",
        event=tracking(
            "clicked", message_id="pm-1", click_url="https://example.org/a", event_id="9"
        ),
    )
    event = recorded.event
    assert (event.delivery, event.issue_id, event.kind) == (delivery, delivery.issue_id, "clicked")
    assert (event.url, event.esp, event.key) == (
        "https://example.org/a",
        "Postmark",
        "Postmark:9:reader0@example.org",
    )


def test_an_unknown_message_keeps_the_issue_from_metadata_when_it_exists(reader):
    issue = IssueFactory(number=11, status=Issue.Status.SENT)
    known = feedback.event_record(
        esp="Mailgun", event=tracking("delivered", metadata={"issue_id": str(issue.pk)})
    )
    assert (known.event.delivery_id, known.event.issue_id) == (None, issue.pk)
    # An issue id that names nothing here is dropped, not a foreign key error.
    unknown = feedback.event_record(
        esp="Mailgun", event=tracking("opened", metadata={"issue_id": "999999"})
    )
    assert unknown.event.issue_id is None


# --- what an event means --------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "kind", "reason", "status"),
    [
        (tracking("bounced", reject_reason="bounced"), Kind.BOUNCED, Reason.BOUNCED, "bounced"),
        (tracking("rejected", reject_reason="invalid"), Kind.REJECTED, Reason.INVALID, "bounced"),
        (tracking("rejected", reject_reason="blocked"), Kind.REJECTED, Reason.BLOCKED, "bounced"),
        (
            tracking("rejected", reject_reason="spam"),
            Kind.REJECTED,
            Reason.COMPLAINED,
            "complained",
        ),
        (
            tracking("complained", reject_reason="spam"),
            Kind.COMPLAINED,
            Reason.COMPLAINED,
            "complained",
        ),
        (
            tracking("unsubscribed", reject_reason="unsubscribed"),
            Kind.UNSUBSCRIBED,
            Reason.UNSUBSCRIBED,
            "unsubscribed",
        ),
        # recorded only
        (tracking("rejected", reject_reason="other"), Kind.REJECTED, None, "active"),
        (tracking("rejected", reject_reason="timed_out"), Kind.REJECTED, None, "active"),
        (tracking("deferred"), Kind.DEFERRED, None, "active"),
        (tracking("subscribed"), Kind.SUBSCRIBED, None, "active"),
        (tracking("failed"), Kind.FAILED, None, "active"),
        (tracking("inbound"), Kind.UNKNOWN, None, "active"),
        # Postmark soft bounce and Amazon SES transient bounce: anymail says "bounced"
        (
            tracking("bounced", reject_reason="bounced", esp_event={"Type": "SoftBounce"}),
            Kind.DEFERRED,
            None,
            "active",
        ),
        (
            tracking(
                "bounced",
                reject_reason="bounced",
                esp_event={"bounce": {"bounceType": "Transient", "bounceSubType": "General"}},
            ),
            Kind.DEFERRED,
            None,
            "active",
        ),
        # a bounce not put on the address (Postmark virus notice, Mailgun gave up)
        (tracking("bounced", reject_reason="other"), Kind.DEFERRED, None, "active"),
        # rejects of our message, not of the recipient
        (
            tracking("rejected", reject_reason="blocked", esp_event={"Type": "DMARCPolicy"}),
            Kind.REJECTED,
            None,
            "active",
        ),
        (
            tracking("rejected", reject_reason="blocked", esp_event={"eventType": "Reject"}),
            Kind.REJECTED,
            None,
            "active",
        ),
    ],
)
def test_what_each_event_means_for_the_address(reader, mailed, event, kind, reason, status):
    recorded = feedback.event_record(esp="Test", event=event)
    assert (recorded.event.kind, recorded.suppressed) == (kind, reason)
    active = list(Suppression.objects.active().values_list("reason", flat=True))
    assert active == ([reason] if reason else [])
    reader.refresh_from_db()
    assert reader.status == status


def test_an_address_that_is_not_one_is_recorded_but_not_suppressed(db):
    recorded = feedback.event_record(
        esp="Test", event=tracking("bounced", reject_reason="bounced", recipient="not an address")
    )
    assert recorded.created and recorded.suppressed is None
    assert not Suppression.objects.exists()


def test_transient_failures_count_issues_since_the_address_last_received_mail(deliver):
    deliveries: dict[int, Delivery] = {}

    def event(number: int, kind: str, minutes: int) -> None:
        if number not in deliveries:
            deliveries[number] = deliver(number, sent_at=NOW - timedelta(days=1))
        delivery = deliveries[number]
        feedback.event_record(
            esp="Test",
            event=tracking(
                kind,
                metadata={"delivery_id": str(delivery.pk)},
                timestamp=NOW - timedelta(minutes=minutes),
            ),
        )

    event(1, "deferred", 90)
    event(2, "deferred", 80)
    event(3, "opened", 70)  # received: the run starts again
    event(4, "deferred", 60)
    event(4, "deferred", 50)
    assert policy.transient_run(email="reader0@example.org") == 1
    event(5, "deferred", 40)
    assert policy.transient_run(email="reader0@example.org") == 2
    assert not Suppression.objects.exists()
    event(6, "deferred", 30)
    assert Suppression.objects.active().get().reason == Reason.BOUNCED


# --- once only ------------------------------------------------------------------------


def test_the_same_event_is_stored_and_applied_once(reader, mailed):
    event = tracking("complained", reject_reason="spam", event_id="abc")
    first = feedback.event_record(esp="Test", event=event)
    suppression = Suppression.objects.get()
    again = feedback.event_record(esp="Test", event=event)
    assert (first.created, again.created) == (True, False)
    assert again.event.pk == first.event.pk and again.suppressed is None
    assert list(Suppression.objects.all()) == [suppression]
    assert reader.events.count() == 1  # one status change of the subscription


@pytest.mark.django_db(transaction=True)
def test_copies_of_one_event_arriving_at_once_are_applied_once(mailed):
    event = tracking("bounced", reject_reason="bounced", event_id="retry-storm")
    start = threading.Barrier(4)
    created: list[bool] = []

    def post() -> None:
        try:
            start.wait()
            created.append(feedback.event_record(esp="Test", event=event).created)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(created) == [False, False, False, True]
    assert DeliveryEvent.objects.count() == 1
    assert Suppression.objects.count() == 1
    assert SubscriptionEvent.objects.filter(to_status="bounced").count() == 1


def test_keys_name_the_esp_the_event_and_the_address():
    with_id = tracking("bounced", event_id="42")
    assert feedback.event_key(esp="Amazon SES", event=with_id, email="a@example.org") == (
        "Amazon SES:42:a@example.org"
    )
    # one SES notification, several recipients: one key each
    assert feedback.event_key(esp="SES", event=with_id, email="a@example.org") != (
        feedback.event_key(esp="SES", event=with_id, email="b@example.org")
    )
    long_id = tracking("bounced", event_id="x" * 300)
    assert len(feedback.event_key(esp="Test", event=long_id, email="a@example.org")) <= 200


def test_without_an_id_the_key_is_a_fingerprint_of_the_event():
    def key(**kwargs) -> str:
        event = tracking("opened", message_id="m1", **kwargs)
        return feedback.event_key(esp="Postmark", event=event, email="a@example.org")

    assert key() == key()
    assert key() != key(timestamp=NOW + timedelta(seconds=1))
    assert len(key()) <= 200
