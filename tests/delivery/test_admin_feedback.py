"""The admin's view of ESP feedback: deliveries, events, each subscriber's history."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery.models import Delivery, DeliveryEvent
from delivery.permissions import READERS_LINKS
from issues.models import Issue
from subscriptions.models import Subscriber
from subscriptions.services import suppression_add, suppression_lift
from subscriptions.tokens import unsubscribe_url
from tests.factories import IssueFactory, StaffFactory
from tests.helpers import member_of

Kind = DeliveryEvent.Kind
_numbers = itertools.count(20)


@pytest.fixture
def staff(client, db) -> Client:
    """A member of "Subscription staff", who reads bounces, complaints and histories."""
    client.force_login(member_of("Subscription staff", "sam"))
    return client


@pytest.fixture
def history(make_subscribers):
    """Issues sent to readers, each delivery with a few ESP events; call to add more."""
    prefixes = itertools.count()

    def add(issues: int, readers: int) -> list[Delivery]:
        subscriptions = make_subscribers(readers, prefix=f"r{next(prefixes)}-")
        created = []
        for _ in range(issues):
            issue = IssueFactory(number=next(_numbers), status=Issue.Status.SENT)
            for subscription in subscriptions:
                delivery = Delivery.objects.create(
                    issue=issue,
                    subscriber=subscription.subscriber,
                    subscription=subscription,
                    email=subscription.subscriber.email,
                    status=Delivery.Status.SENT,
                    sent_at=timezone.now() - timedelta(days=1),
                    esp_message_id=f"m-{issue.pk}-{subscription.pk}",
                )
                for kind in (Kind.DELIVERED, Kind.OPENED):
                    DeliveryEvent.objects.create(
                        key=f"Postmark:{delivery.pk}:{kind}",
                        delivery=delivery,
                        issue=issue,
                        esp="Postmark",
                        kind=kind,
                        email=delivery.email,
                        esp_message_id=delivery.esp_message_id,
                        occurred_at=timezone.now(),
                    )
                created.append(delivery)
        return created

    return add


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        assert response.status_code == 200, url
    return len(ctx.captured_queries)


def test_pages_take_as_many_queries_for_many_rows_as_for_few(staff, history):
    first = history(issues=1, readers=2)
    subscriber_id, delivery_id = first[0].subscriber_id, first[0].pk
    urls = [
        "/admin/delivery/delivery/",
        "/admin/delivery/deliveryevent/",
        "/admin/delivery/deliveryevent/?kind=opened&esp=Postmark",
        f"/admin/delivery/delivery/?issue={first[0].issue_id}",
        f"/admin/delivery/delivery/{delivery_id}/change/",
        f"/admin/subscriptions/subscriber/{subscriber_id}/change/",
    ]
    for url in urls:  # content types and other per-process caches, filled once
        staff.get(url)
    few = [queries(staff, url) for url in urls]
    # more readers, and more issues sent to the same reader
    history(issues=6, readers=4)
    for _ in range(6):
        issue = Issue.objects.create(
            publication=first[0].issue.publication,
            volume=first[0].issue.volume,
            number=next(_numbers),
            status=Issue.Status.SENT,
        )
        delivery = Delivery.objects.create(
            issue=issue,
            subscriber_id=subscriber_id,
            email=first[0].email,
            status=Delivery.Status.SENT,
            sent_at=timezone.now(),
        )
        for kind in (Kind.DELIVERED, Kind.CLICKED):
            DeliveryEvent.objects.create(
                key=f"x:{delivery.pk}:{kind}",
                delivery=delivery,
                issue=issue,
                esp="Postmark",
                kind=kind,
                email=delivery.email,
                occurred_at=timezone.now(),
            )
            DeliveryEvent.objects.create(
                key=f"y:{delivery_id}:{delivery.pk}:{kind}",
                delivery_id=delivery_id,
                esp="Postmark",
                kind=kind,
                email=first[0].email,
                occurred_at=timezone.now(),
            )
    many = [queries(staff, url) for url in urls]
    assert few == many


def test_subscriber_page_shows_deliveries_events_and_suppression(staff, history):
    delivery = history(issues=2, readers=1)[0]
    DeliveryEvent.objects.create(
        key="Mailgun:tok:bounce",
        delivery=delivery,
        issue=delivery.issue,
        esp="Mailgun",
        kind=Kind.BOUNCED,
        reject_reason="bounced",
        email=delivery.email,
        description="550 5.1.1 no such user",
        occurred_at=timezone.now(),
    )
    suppression_add(email=delivery.email, reason="bounced", source="Mailgun webhook: bounced")
    page = staff.get(f"/admin/subscriptions/subscriber/{delivery.subscriber_id}/change/").text
    assert "Delivery history" in page
    assert "<table>" in page and "&lt;table" not in page
    assert str(delivery.issue) in page
    assert "Bounced (bounced)" in page and "Opened" in page and "Delivered" in page
    assert "Suppressed" in page and "Mailgun webhook: bounced" in page
    assert f"/admin/delivery/delivery/{delivery.pk}/change/" in page


def test_the_history_shows_a_sent_rows_attempts_and_the_error_it_met_before(staff, history):
    delivery = history(issues=1, readers=1)[0]
    Delivery.objects.filter(pk=delivery.pk).update(
        attempts=3, last_error="SMTP 451 4.3.0 Try again later"
    )
    page = staff.get(f"/admin/subscriptions/subscriber/{delivery.subscriber_id}/change/").text
    assert "<th>Attempts</th>" in page and "<td>3</td>" in page
    assert "Before it went: SMTP 451 4.3.0 Try again later" in page


def test_lifted_suppression_shows_its_note(staff, history):
    delivery = history(issues=1, readers=1)[0]
    suppression = suppression_add(email=delivery.email, reason="complained", source="Postmark")
    suppression_lift(suppression=suppression, by=None, note="complaint was a mistake")
    page = staff.get(f"/admin/subscriptions/subscriber/{delivery.subscriber_id}/change/").text
    assert "Suppression lifted" in page and "complaint was a mistake" in page


def test_new_subscriber_form_has_no_history(admin_client):
    # (Subscription staff add people by importing them, not with this form.)
    page = admin_client.get("/admin/subscriptions/subscriber/add/")
    assert page.status_code == 200
    assert "Delivery history" not in page.text


def test_the_history_links_lead_to_filtered_lists(staff, history):
    mine = history(issues=2, readers=1)
    history(issues=1, readers=2)
    email = mine[0].email
    deliveries = staff.get(f"/admin/delivery/delivery/?subscriber={mine[0].subscriber_id}")
    assert deliveries.status_code == 200
    assert deliveries.context["cl"].queryset.count() == 2
    events = staff.get("/admin/delivery/deliveryevent/", {"email__exact": email})
    assert events.status_code == 200
    assert events.context["cl"].queryset.count() == 4


def test_filters_and_search_narrow_the_lists(staff, history):
    deliveries = history(issues=1, readers=3)
    target = deliveries[1]
    found = staff.get("/admin/delivery/delivery/", {"q": target.email})
    assert list(found.context["cl"].queryset) == [target]
    events = staff.get("/admin/delivery/deliveryevent/", {"kind": Kind.OPENED})
    assert {e.kind for e in events.context["cl"].queryset} == {Kind.OPENED}
    assert events.context["cl"].queryset.count() == 3


def test_deliveries_and_events_are_read_only(staff, history):
    delivery = history(issues=1, readers=1)[0]
    event = delivery.events.first()
    assert staff.get("/admin/delivery/delivery/add/").status_code == 403
    assert staff.get("/admin/delivery/deliveryevent/add/").status_code == 403
    url = f"/admin/delivery/deliveryevent/{event.pk}/change/"
    assert staff.get(url).status_code == 200
    staff.post(url, {"kind": Kind.COMPLAINED})
    event.refresh_from_db()
    assert event.kind != Kind.COMPLAINED
    response = staff.post(f"/admin/delivery/delivery/{delivery.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Delivery.objects.filter(pk=delivery.pk).exists()


def test_subscriber_admin_keeps_its_own_features(staff, history):
    delivery = history(issues=1, readers=1)[0]
    page = staff.get(f"/admin/subscriptions/subscriber/{delivery.subscriber_id}/change/")
    assert "The Monitor" in page.text  # the subscriptions inline
    assert staff.get("/admin/subscriptions/subscriber/import/").status_code == 200
    assert Subscriber.objects.filter(pk=delivery.subscriber_id).exists()


def test_the_history_is_shown_only_to_those_who_may_view_deliveries(history):
    delivery = history(issues=1, readers=1)[0]
    url = f"/admin/subscriptions/subscriber/{delivery.subscriber_id}/change/"
    may_view = ["subscriptions.view_subscriber", "subscriptions.view_subscription"]
    without, with_it = Client(), Client()
    without.force_login(StaffFactory(username="without", permissions=may_view))
    with_it.force_login(
        StaffFactory(username="with", permissions=[*may_view, "delivery.view_delivery"])
    )

    page = without.get(url)
    assert page.status_code == 200 and delivery.email in page.text
    assert "Delivery history" not in page.text
    assert str(delivery.issue) not in page.text
    assert "/admin/delivery/" not in page.text

    page = with_it.get(url).text
    assert "Delivery history" in page and str(delivery.issue) in page
    assert f"/admin/delivery/delivery/{delivery.pk}/change/" in page


def test_a_clicked_url_is_shown_only_to_those_who_may_see_readers_links(staff, history):
    delivery = history(issues=1, readers=1)[0]
    link = unsubscribe_url(delivery.subscription_id)  # works for whoever holds it
    event = DeliveryEvent.objects.create(
        key="Postmark:click",
        delivery=delivery,
        issue=delivery.issue,
        esp="Postmark",
        kind=Kind.CLICKED,
        email=delivery.email,
        url=link,
        occurred_at=timezone.now(),
    )
    pages = [
        f"/admin/delivery/deliveryevent/{event.pk}/change/",
        f"/admin/delivery/delivery/{delivery.pk}/change/",  # its events inline
    ]
    holder = Client()
    holder.force_login(
        StaffFactory(username="holder", groups=["Subscription staff"], permissions=[READERS_LINKS])
    )
    for url in pages:
        page = staff.get(url)
        assert page.status_code == 200 and "Clicked" in page.text
        assert link not in page.text
        assert link in holder.get(url).text
