"""A clicked link is kept only if it is a web (http or https) address; the click itself
is recorded whatever the link."""

from __future__ import annotations

from datetime import timedelta

import pytest
from anymail.signals import AnymailTrackingEvent
from django.utils import timezone

from delivery import feedback
from delivery.models import Delivery, DeliveryEvent
from issues.models import Issue
from tests.factories import IssueFactory


@pytest.fixture
def delivery(make_subscribers) -> Delivery:
    (subscription,) = make_subscribers(1)
    return Delivery.objects.create(
        issue=IssueFactory(status=Issue.Status.SENT),
        subscriber=subscription.subscriber,
        subscription=subscription,
        email=subscription.subscriber.email,
        status=Delivery.Status.SENT,
        sent_at=timezone.now() - timedelta(hours=1),
    )


def click(delivery: Delivery, url: str) -> DeliveryEvent:
    event = AnymailTrackingEvent(
        event_type="clicked",
        recipient=delivery.email,
        timestamp=timezone.now(),
        event_id=url,
        click_url=url,
        metadata={"delivery_id": str(delivery.pk)},
    )
    return feedback.event_record(esp="Test", event=event).event


@pytest.mark.parametrize(
    "url", ["https://example.org/monitor/6/11/?a=1#x", "http://example.org/", "HTTPS://EXAMPLE.ORG"]
)
def test_a_web_link_is_kept(delivery, url):
    event = click(delivery, url)
    assert (event.kind, event.url, event.delivery_id) == ("clicked", url, delivery.pk)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
        "ftp://example.org/file",
        "//example.org/no-scheme",
        "http://[::1",  # not even parseable
    ],
)
def test_any_other_link_is_dropped_and_the_click_recorded(delivery, url):
    event = click(delivery, url)
    assert (event.kind, event.url, event.delivery_id) == ("clicked", "", delivery.pk)
    assert DeliveryEvent.objects.get().pk == event.pk
