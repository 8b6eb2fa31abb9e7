"""A publication added on the preferences page is active at once only through a fresh
link from a preferences-link email; through an issue's footer (issues are forwarded)
or an older link it waits for a confirmation by email."""

from __future__ import annotations

import re
from datetime import timedelta

import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from delivery import chunk
from delivery import services as delivery
from delivery.models import Delivery
from issues.models import Issue
from subscriptions.models import Subscription
from tests.factories import IssueFactory
from tests.helpers import make_subscription

Status = Subscription.Status
BOTH = {"name": "Ann", "publications": ["monitor", "fortnight"], "format": "html"}


def path_in(message, path: str) -> str:
    match = re.search(rf"https?://[^\s/]+({path}[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def emailed_preferences_link(commit, email: str = "ann@example.org") -> str:
    with commit():
        Client().post("/preferences/", {"email": email})
    return path_in(mail.outbox[-1], "/preferences/")


def footer_preferences_link(publication) -> str:
    """The preferences link in the footer of an issue as the delivery pipeline sends it."""
    issue = IssueFactory(volume__publication=publication, status=Issue.Status.APPROVED)
    delivery.send_start(issue=issue)
    ids = Delivery.objects.filter(issue=issue).values_list("id", flat=True)
    chunk.chunk_send(issue_id=issue.pk, lo=min(ids), hi=max(ids))
    (message,) = [m for m in mail.outbox if "Issue" in m.subject]
    return path_in(message, "/preferences/")


def statuses() -> dict[str, str]:
    return dict(Subscription.objects.values_list("publication__slug", "status"))


def test_a_fresh_emailed_link_adds_the_publication_at_once(
    client, publication, other_publication, commit
):
    make_subscription(publication, email="ann@example.org")
    link = emailed_preferences_link(commit)
    with commit():
        response = client.post(link, BOTH)
    assert "Your preferences are saved." in response.text
    assert "We sent a confirmation" not in response.text
    assert statuses() == {"monitor": Status.ACTIVE, "fortnight": Status.ACTIVE}
    assert len(mail.outbox) == 1  # the preferences link only


def test_an_emailed_link_older_than_ten_minutes_asks_for_a_confirmation(
    client, publication, other_publication, commit
):
    make_subscription(publication, email="ann@example.org")
    link = emailed_preferences_link(commit)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        with commit():
            response = client.post(link, BOTH)
        assert "We sent a confirmation to ann@example.org." in response.text
        assert "To start receiving Fortnight in Review, open the link" in response.text
        assert statuses() == {"monitor": Status.ACTIVE, "fortnight": Status.PENDING}
        confirmation = mail.outbox[-1]
        assert confirmation.to == ["ann@example.org"]
        assert "Fortnight in Review" in confirmation.body
        with commit():
            client.post(path_in(confirmation, "/subscribe/confirm/"))
    assert statuses() == {"monitor": Status.ACTIVE, "fortnight": Status.ACTIVE}


def test_an_issue_footer_link_never_subscribes_whoever_opens_it(
    client, publication, other_publication, commit
):
    make_subscription(publication, email="ann@example.org")
    link = footer_preferences_link(publication)
    sent = len(mail.outbox)
    with commit():
        response = client.post(link, BOTH)  # seconds old: still only a confirmation
    assert response.status_code == 200
    assert "We sent a confirmation to ann@example.org." in response.text
    assert statuses() == {"monitor": Status.ACTIVE, "fortnight": Status.PENDING}
    assert [m.to for m in mail.outbox[sent:]] == [["ann@example.org"]]
    assert "/subscribe/confirm/" in mail.outbox[-1].body


def test_an_ended_subscription_ticked_again_through_the_footer_waits(client, publication, commit):
    subscription = make_subscription(publication, email="ann@example.org")
    link = footer_preferences_link(publication)
    client.post(link, {"name": "Ann", "format": "html"})  # nothing ticked: unsubscribes
    assert statuses() == {"monitor": Status.UNSUBSCRIBED}
    with commit():
        response = client.post(link, {"name": "Ann", "publications": "monitor", "format": "html"})
    assert "We sent a confirmation to ann@example.org." in response.text
    subscription.refresh_from_db()
    assert subscription.status == Status.PENDING and subscription.confirmed_at is None


def test_within_the_cooldown_the_page_points_at_the_confirmation_already_sent(
    client, publication, other_publication, gated_publication, commit
):
    make_subscription(publication, email="ann@example.org")
    link = footer_preferences_link(publication)
    with commit():
        client.post(link, BOTH)
    sent = len(mail.outbox)
    with commit():
        response = client.post(link, {**BOTH, "publications": [*BOTH["publications"], "brief"]})
    assert "A confirmation went to ann@example.org a few minutes ago" in response.text
    assert "Fortnight in Review and Restricted Brief" in response.text
    assert len(mail.outbox) == sent
    assert statuses()["brief"] == Status.PENDING
