"""Enumeration, subscription bombing and rate limits."""

from __future__ import annotations

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from subscriptions.models import Subscriber, Subscription
from tests.helpers import make_subscription

Status = Subscription.Status


def post_subscribe(client: Client, email: str, ip: str = "192.0.2.1"):
    return client.post(
        "/subscribe/",
        {"email": email, "name": "Someone", "publications": "monitor"},
        REMOTE_ADDR=ip,
    )


def test_answers_are_identical_for_new_pending_active_and_unsubscribed(publication, commit):
    make_subscription(publication, email="pending@example.org", status=Status.PENDING)
    make_subscription(publication, email="active@example.org", status=Status.ACTIVE)
    make_subscription(publication, email="gone@example.org", status=Status.UNSUBSCRIBED)
    answers = []
    for email in (
        "stranger@example.org",
        "pending@example.org",
        "active@example.org",
        "gone@example.org",
    ):
        with commit():
            response = post_subscribe(Client(), email)
        # every header but the clock (Expires: now, from never_cache)
        headers = sorted((k, v) for k, v in response.headers.items() if k != "Expires")
        answers.append((response.status_code, response.content, headers))
    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0][0] == 200


def test_preferences_link_answers_are_identical_for_known_and_unknown(publication, commit):
    make_subscription(publication, email="active@example.org")
    answers = []
    for email in ("active@example.org", "stranger@example.org"):
        with commit():
            response = Client().post("/preferences/", {"email": email})
        answers.append((response.status_code, response.content))
    assert answers[0] == answers[1]
    assert [m.to for m in mail.outbox] == [["active@example.org"]]


def test_many_requests_from_many_ips_send_one_confirmation(publication, commit):
    responses = []
    for n in range(30):
        with commit():
            email = "victim@example.org" if n % 2 else "VICTIM@example.org"
            responses.append(post_subscribe(Client(), email, ip=f"198.51.100.{n}").status_code)
    assert set(responses) <= {200, 429}
    assert responses.count(200) >= 10
    assert len(mail.outbox) == 1
    assert Subscriber.objects.count() == 1


def test_confirmation_can_be_resent_after_ten_minutes(publication, commit):
    with commit():
        post_subscribe(Client(), "a@example.org")
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=9)), commit():
        post_subscribe(Client(), "a@example.org", ip="192.0.2.2")
    assert len(mail.outbox) == 1
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=11)), commit():
        post_subscribe(Client(), "a@example.org", ip="192.0.2.3")
    assert len(mail.outbox) == 2


def test_subscribe_is_rate_limited_per_ip_with_a_readable_429(publication, commit):
    codes = []
    # the clock stands still: the limit's window must not roll over between requests
    with time_machine.travel(timezone.now(), tick=False):
        for n in range(12):
            with commit():
                codes.append(post_subscribe(Client(), f"person{n}@example.org").status_code)
        response = post_subscribe(Client(), "late@example.org")
    assert codes[:10] == [200] * 10
    assert codes[10:] == [429, 429]
    assert response.status_code == 429
    assert "Too many requests" in response.text
    assert not Subscriber.objects.filter(email="late@example.org").exists()
    # GET still works
    assert Client().get("/subscribe/", REMOTE_ADDR="192.0.2.1").status_code == 200


def test_subscribe_is_rate_limited_per_address_across_ips(publication, commit):
    with time_machine.travel(timezone.now(), tick=False):
        codes = [
            post_subscribe(Client(), "target@example.org", ip=f"203.0.113.{n}").status_code
            for n in range(11)
        ]
    assert codes[:10] == [200] * 10 and codes[10] == 429


@pytest.mark.parametrize(
    ("url", "data", "allowed"),
    [
        ("/preferences/", {"email": "a@example.org"}, 5),
        (
            "/contact/",
            {"name": "A", "email": "a@example.org", "subject": "Hi", "body": "Hello"},
            5,
        ),
    ],
)
def test_preferences_link_and_contact_are_rate_limited_per_ip(
    publication, commit, url, data, allowed
):
    codes = []
    # the clock stands still: the limit's window must not roll over between requests
    with time_machine.travel(timezone.now(), tick=False):
        for n in range(allowed + 1):
            with commit():
                codes.append(Client().post(url, {**data, "email": f"p{n}@example.org"}).status_code)
    assert codes == [200] * allowed + [429]
