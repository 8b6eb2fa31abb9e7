"""A confirm link confirms the request it was sent for, and nothing after it."""

from __future__ import annotations

import re
from datetime import timedelta

import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from subscriptions import tokens
from subscriptions.models import Subscriber, Subscription
from tests.helpers import make_subscription

Status = Subscription.Status


def request(commit, email: str = "ann@example.org", publications: str = "monitor") -> str:
    """Subscribe through the form; the confirm link of the email it sent, if any."""
    sent = len(mail.outbox)
    with commit():
        Client().post("/subscribe/", {"email": email, "publications": publications})
    if len(mail.outbox) == sent:
        return ""
    match = re.search(r"http://\S+(/subscribe/confirm/\S+/)", mail.outbox[-1].body)
    return match.group(1)


def statuses() -> dict[str, str]:
    return dict(Subscription.objects.values_list("publication__slug", "status"))


def later(minutes: int):
    return time_machine.travel(timezone.now() + timedelta(minutes=minutes))


def test_a_link_from_before_an_unsubscribe_does_not_confirm_a_new_request(
    client, publication, commit
):
    old = request(commit)
    with commit():
        assert client.post(old).status_code == 200
    assert statuses() == {"monitor": Status.ACTIVE}
    subscription = Subscription.objects.get()
    client.post(
        f"/unsubscribe/{tokens.make_token(tokens.UNSUBSCRIBE, subscription.pk)}/",
        {"List-Unsubscribe": "One-Click"},
    )

    with later(11):
        new = request(commit)  # by anyone: the form asks for no proof
        assert new and new != old
        for method in (client.get, client.post):
            response = method(old)
            assert response.status_code == 400
            assert "This link does not work" in response.text
        assert statuses() == {"monitor": Status.PENDING}
        with commit():
            assert client.post(new).status_code == 200
    assert statuses() == {"monitor": Status.ACTIVE}


def test_a_used_link_gets_the_bad_link_page_and_changes_nothing(client, publication, commit):
    link = request(commit)
    with commit():
        client.post(link)
    sent = len(mail.outbox)
    with commit():
        response = client.post(link)
    assert response.status_code == 400
    assert "works once, for the request it was sent for" in response.text
    assert statuses() == {"monitor": Status.ACTIVE}
    assert len(mail.outbox) == sent  # no second welcome


def test_a_newer_confirmation_replaces_the_link_of_the_older_one(
    client, publication, other_publication, commit
):
    first = request(commit, publications="monitor")
    with later(11):
        second = request(commit, publications="fortnight")
        assert client.post(first).status_code == 400
        assert statuses() == {"monitor": Status.PENDING, "fortnight": Status.PENDING}
        page = client.get(second)
        assert "The Monitor" in page.text and "Fortnight in Review" in page.text
        with commit():
            client.post(second)
    assert statuses() == {"monitor": Status.ACTIVE, "fortnight": Status.ACTIVE}


def test_a_request_within_the_cooldown_leaves_the_sent_link_working(
    client, publication, other_publication, commit
):
    link = request(commit, publications="monitor")
    assert request(commit, publications="fortnight") == ""  # no second email yet
    page = client.get(link)
    assert page.status_code == 200
    assert "Fortnight in Review" in page.text  # the page says what pressing confirms
    with commit():
        client.post(link)
    assert statuses() == {"monitor": Status.ACTIVE, "fortnight": Status.ACTIVE}


def test_ending_the_subscriptions_ends_the_outstanding_link(client, publication, commit):
    link = request(commit)
    subscription = Subscription.objects.get()
    client.post(
        f"/unsubscribe/{tokens.make_token(tokens.UNSUBSCRIBE, subscription.pk)}/",
        {"List-Unsubscribe": "One-Click"},
    )
    assert client.post(link).status_code == 400
    assert statuses() == {"monitor": Status.UNSUBSCRIBED}


def test_a_link_signed_before_nonces_confirms_its_own_request(client, publication, commit):
    # emailed before this release: the token signs the subscriber id alone
    pending = make_subscription(publication, status=Status.PENDING)
    legacy = f"/subscribe/confirm/{tokens.make_token(tokens.CONFIRM, pending.subscriber_id)}/"
    assert client.get(legacy).status_code == 200
    with commit():
        assert client.post(legacy).status_code == 200
    assert statuses() == {"monitor": Status.ACTIVE}
    assert client.post(legacy).status_code == 400


def test_a_link_signed_before_nonces_dies_with_the_next_email(client, publication, commit):
    pending = make_subscription(publication, email="ann@example.org", status=Status.PENDING)
    legacy = f"/subscribe/confirm/{tokens.make_token(tokens.CONFIRM, pending.subscriber_id)}/"
    assert request(commit)
    assert Subscriber.objects.get().confirm_nonce
    assert client.post(legacy).status_code == 400
    assert statuses() == {"monitor": Status.PENDING}
