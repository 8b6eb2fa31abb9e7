"""After staff lift an address's suppression, an ESP event from before the lift (a late
copy of the bounce they already weighed) is recorded and suppresses nothing; what
happens after the lift counts as usual."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from anymail.signals import AnymailTrackingEvent
from django.utils import timezone

from delivery import feedback, policy
from delivery.models import Delivery, DeliveryEvent
from issues.models import Issue
from subscriptions.models import Subscription, Suppression
from subscriptions.services import suppression_lift
from tests.factories import IssueFactory

Status = Subscription.Status
HOUR = timedelta(hours=1)


@pytest.fixture
def reader(make_subscribers) -> Subscription:
    (subscription,) = make_subscribers(1)
    return subscription


@pytest.fixture
def deliver(reader):
    def make(number: int) -> Delivery:
        return Delivery.objects.create(
            issue=IssueFactory(number=number, status=Issue.Status.SENT),
            subscriber=reader.subscriber,
            subscription=reader,
            email=reader.subscriber.email,
            status=Delivery.Status.SENT,
            sent_at=timezone.now() - 5 * HOUR,
        )

    return make


def report(delivery: Delivery, kind: str, at: datetime, **fields) -> feedback.Recorded:
    event = AnymailTrackingEvent(
        event_type=kind,
        recipient=delivery.email,
        timestamp=at,
        metadata={"delivery_id": str(delivery.pk)},
        **fields,
    )
    return feedback.event_record(esp="Test", event=event)


def lift_and_resubscribe(reader: Subscription) -> datetime:
    suppression = Suppression.objects.active().get()
    assert suppression_lift(suppression=suppression, by=None, note="mailbox fixed, reader called")
    # The reader confirmed a new subscription afterwards.
    Subscription.objects.filter(pk=reader.pk).update(status=Status.ACTIVE, ended_at=None)
    suppression.refresh_from_db()
    return suppression.lifted_at


def test_a_bounce_from_before_the_lift_is_recorded_but_does_not_suppress_again(deliver, reader):
    delivery = deliver(11)
    bounced_at = timezone.now() - 4 * HOUR
    assert report(delivery, "bounced", bounced_at, reject_reason="bounced", event_id="1").suppressed
    lifted_at = lift_and_resubscribe(reader)

    # The ESP's second notice of the same bounce, under another event id, arrives late.
    late = report(delivery, "bounced", bounced_at + HOUR, reject_reason="bounced", event_id="2")
    complaint = report(delivery, "complained", lifted_at - timedelta(seconds=1), event_id="3")

    assert (late.created, late.suppressed) == (True, None)
    assert (complaint.created, complaint.suppressed) == (True, None)
    assert DeliveryEvent.objects.count() == 3
    assert not Suppression.objects.active().exists()
    reader.refresh_from_db()
    assert reader.status == Status.ACTIVE


def test_a_bounce_after_the_lift_suppresses_again(deliver, reader):
    delivery = deliver(11)
    report(delivery, "bounced", timezone.now() - 4 * HOUR, reject_reason="bounced", event_id="1")
    lifted_at = lift_and_resubscribe(reader)

    again = report(delivery, "bounced", lifted_at + timedelta(seconds=1), event_id="2")

    assert again.suppressed == Suppression.Reason.BOUNCED
    assert Suppression.objects.active().get().reason == Suppression.Reason.BOUNCED
    assert Suppression.objects.count() == 2  # the lifted one stays for the record
    reader.refresh_from_db()
    assert reader.status == Status.BOUNCED


def test_the_run_of_transient_failures_starts_again_at_the_lift(deliver, reader):
    first, second, third, fourth = (deliver(n) for n in (11, 12, 13, 14))
    start = timezone.now() - 4 * HOUR
    report(first, "deferred", start)
    report(second, "deferred", start + timedelta(minutes=10))
    report(third, "deferred", start + timedelta(minutes=20))  # the third issue in a row
    assert Suppression.objects.active().get().reason == Suppression.Reason.BOUNCED
    lifted_at = lift_and_resubscribe(reader)

    report(fourth, "deferred", lifted_at + timedelta(seconds=1))

    assert policy.transient_run(email=reader.subscriber.email, since=lifted_at) == 1
    assert not Suppression.objects.active().exists()
    reader.refresh_from_db()
    assert reader.status == Status.ACTIVE
