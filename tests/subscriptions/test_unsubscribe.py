from __future__ import annotations

import threading
import urllib.request

import pytest
from django.core import mail
from django.test import Client
from django.test.client import MULTIPART_CONTENT, encode_multipart

from subscriptions.models import Subscription, SubscriptionEvent
from subscriptions.tokens import unsubscribe_url
from tests.helpers import confirm_path, make_subscription

Status = Subscription.Status


def path(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


@pytest.fixture
def subscription(publication) -> Subscription:
    return make_subscription(publication)


def test_get_shows_one_button_and_changes_nothing(csrf_client, subscription):
    response = csrf_client.get(path(unsubscribe_url(subscription.pk)))
    assert response.status_code == 200
    assert response.text.count("<button") == 1
    assert "Unsubscribe from The Monitor" in response.text
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE


def test_page_post_unsubscribes_and_offers_preferences(csrf_client, subscription):
    url = path(unsubscribe_url(subscription.pk))
    token = csrf_client.get(url).cookies["csrftoken"].value
    response = csrf_client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert "/preferences/" in response.text
    subscription.refresh_from_db()
    assert subscription.status == Status.UNSUBSCRIBED
    assert subscription.ended_at is not None
    # idempotent, and a second visit says so without a button
    again = csrf_client.get(url)
    assert "You are unsubscribed" in again.text and "<button" not in again.text
    assert csrf_client.post(url, {"csrfmiddlewaretoken": token}).status_code == 200


def test_page_post_without_csrf_token_is_refused(csrf_client, subscription):
    response = csrf_client.post(path(unsubscribe_url(subscription.pk)), {"confirm": "1"})
    assert response.status_code == 403
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE


def test_one_click_urlencoded_without_cookies_or_csrf(subscription):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        path(unsubscribe_url(subscription.pk)),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert not response.cookies.get("sessionid")
    subscription.refresh_from_db()
    assert subscription.status == Status.UNSUBSCRIBED
    assert subscription.reason == "one-click (RFC 8058)"


def test_one_click_multipart_without_cookies_or_csrf(subscription):
    client = Client(enforce_csrf_checks=True)
    body = encode_multipart("BoUnDaRy", {"List-Unsubscribe": "One-Click"})
    response = client.post(
        path(unsubscribe_url(subscription.pk)),
        body,
        content_type=MULTIPART_CONTENT.replace("BoUnDaRyStRiNg", "BoUnDaRy"),
    )
    assert response.status_code == 200
    subscription.refresh_from_db()
    assert subscription.status == Status.UNSUBSCRIBED


def test_one_click_twice_is_idempotent(subscription):
    client = Client(enforce_csrf_checks=True)
    url = path(unsubscribe_url(subscription.pk))
    for _ in range(2):
        response = client.post(url, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    assert SubscriptionEvent.objects.filter(to_status=Status.UNSUBSCRIBED).count() == 1


def test_one_click_with_a_bad_token_is_400_and_changes_nothing(subscription):
    client = Client(enforce_csrf_checks=True)
    url = path(unsubscribe_url(subscription.pk))
    response = client.post(url[:-3] + "xx/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE


def test_other_post_bodies_do_not_bypass_csrf(subscription):
    client = Client(enforce_csrf_checks=True)
    url = path(unsubscribe_url(subscription.pk))
    for body in ({"List-Unsubscribe": "one-click"}, {"List-Unsubscribe": "Yes"}, {}):
        assert client.post(url, body).status_code == 403
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE


def test_old_confirm_link_does_not_resubscribe_after_unsubscribe(client, publication, commit):
    subscription = make_subscription(publication, status=Status.PENDING)
    confirm = confirm_path(subscription.subscriber)
    with commit():
        client.post(confirm)
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    client.post(path(unsubscribe_url(subscription.pk)), {"List-Unsubscribe": "One-Click"})

    with commit():
        response = client.post(confirm)
    assert response.status_code == 400
    assert "This link does not work" in response.text
    subscription.refresh_from_db()
    assert subscription.status == Status.UNSUBSCRIBED
    # the unsubscribe page offers no way back but the subscribe form (double opt-in)
    page = client.get(path(unsubscribe_url(subscription.pk)))
    assert "<button" not in page.text and "/subscribe/" in page.text


def test_unsubscribe_link_of_deleted_subscription_is_404(client, subscription):
    url = path(unsubscribe_url(subscription.pk))
    subscription.delete()
    assert client.get(url).status_code == 404
    assert client.post(url, {"List-Unsubscribe": "One-Click"}).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_one_click_posts_change_state_once(live_server, publication):
    subscription = make_subscription(publication)
    url = live_server.url + path(unsubscribe_url(subscription.pk))
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def post() -> None:
        request = urllib.request.Request(
            url,
            data=b"List-Unsubscribe=One-Click",
            # as production sees it behind its TLS proxy (no redirect to https)
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-Proto": "https",
            },
            method="POST",
        )
        barrier.wait()
        with urllib.request.urlopen(request, timeout=30) as response:
            statuses.append(response.status)

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 10
    subscription.refresh_from_db()
    assert subscription.status == Status.UNSUBSCRIBED
    assert SubscriptionEvent.objects.filter(to_status=Status.UNSUBSCRIBED).count() == 1
    assert mail.outbox == []
