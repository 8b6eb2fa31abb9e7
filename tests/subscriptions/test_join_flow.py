"""Joining by code: /join/ with the code from the letter and an address, a confirmation
to that address, one button; the offline reader's subscriptions move to email."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from subscriptions.models import Subscriber, Subscription
from subscriptions.services import suppression_add
from tests.helpers import make_subscription, offline_reader

Status = Subscription.Status
BAD_CODE = "This code is not valid or has been used."


def post_join(code: str, address: str = "new@example.org", ip: str = "192.0.2.1"):
    return Client().post("/join/", {"code": code, "email": address}, REMOTE_ADDR=ip)


def confirm_link(message) -> str:
    return re.search(r"http\S+/join/confirm/\S+/", message.body).group(0)


@pytest.fixture
def reader(publication) -> Subscriber:
    return offline_reader(
        publication, name="Zoë Secret", organization="Hidden Ministry", fax="+1 202 555 0101"
    )


def test_the_letters_qr_link_fills_in_the_code(reader):
    response = Client().get(f"/join/{reader.join_code.lower()}/")
    assert response.status_code == 200
    assert f'value="{reader.join_code_display}"' in response.text
    assert "Zoë" not in response.text and "Hidden" not in response.text


def test_a_reader_joins_with_the_code_and_keeps_source_and_history(publication, reader, commit):
    typed = reader.join_code_display.lower().replace("-", " ")
    with commit():
        response = post_join(typed, "Zoe@Example.org")
    assert response.status_code == 200
    assert "Check your email" in response.text

    (message,) = mail.outbox
    assert message.to == ["zoe@example.org"]
    assert message.subject == "Confirm your email address for The Monitor"
    raw = message.message().as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.strict)
    assert parsed["To"] == "zoe@example.org"
    for secret in ("Zoë", "Secret", "Hidden", "202 555 0101", reader.join_code):
        assert secret not in message.body
        assert secret not in message.alternatives[0][0]

    link = confirm_link(message)
    page = Client().get(link)
    assert page.status_code == 200
    assert page.text.count("<button") == 1
    for secret in ("Zoë", "Hidden", "The Monitor"):
        assert secret not in page.text.split("<main")[-1]
    assert Subscription.objects.get().status == Status.OFFLINE  # a GET changes nothing

    with commit():
        done = Client().post(link, REMOTE_ADDR="198.51.100.7")
    assert done.status_code == 200
    assert "The Monitor" in done.text

    reader.refresh_from_db()
    subscription = Subscription.objects.get()
    assert subscription.subscriber_id == reader.pk
    assert (subscription.status, subscription.confirmed_at is not None) == (Status.ACTIVE, True)
    assert subscription.converted_at is not None
    assert (reader.email, reader.source, reader.join_code) == (
        "zoe@example.org",
        "legacy-postal",
        None,
    )
    assert (reader.consent_form, reader.consent_ip) == ("join code", "198.51.100.7")
    assert reader.consent_at is not None
    assert list(subscription.events.values_list("from_status", "to_status", "reason")) == [
        ("", "offline", "import"),
        ("offline", "active", "joined by code"),
    ]
    assert mail.outbox[-1].subject.startswith("Welcome to The Monitor")

    # the code is used up; the link says so and changes nothing
    assert BAD_CODE in post_join(typed, "other@example.org").text
    again = Client().post(link)
    assert "Nothing to confirm" in again.text


def test_a_wrong_or_used_code_gets_the_same_answer_whatever_the_code(publication, reader, commit):
    used = offline_reader(publication, postal_address="2 High St")
    with commit():
        post_join(used.join_code)
    Client().post(confirm_link(mail.outbox[0]))

    answers = set()
    for n, code in enumerate(["ZZZZ-ZZZZ", "abc", used.join_code_display, "0000 0000", "U" * 8]):
        response = post_join(code, ip=f"203.0.113.{n}")
        assert BAD_CODE in response.text
        # the page is the same but for what was typed and the CSRF token
        answers.add((response.status_code, re.sub(r'value="[^"]*"', "", response.text)))
    assert len(answers) == 1
    assert answers.pop()[0] == 400


def test_joining_is_rate_limited_per_code_across_addresses_and_ips(publication, reader, commit):
    # the clock stands still: the limit's window must not roll over between requests
    with time_machine.travel(timezone.now(), tick=False):
        codes = []
        for n in range(6):
            code = "WXYZ-2345" if n % 2 else "wxyz 2345"
            codes.append(post_join(code, f"p{n}@example.org", ip=f"198.51.100.{n}").status_code)
        assert codes == [400] * 5 + [429]
        # another code from those addresses is still answered
        with commit():
            assert (
                post_join(reader.join_code, "p9@example.org", ip="198.51.100.9").status_code == 200
            )


def test_joining_is_rate_limited_per_ip(publication, commit):
    with time_machine.travel(timezone.now(), tick=False):
        codes = [post_join(f"AAAA-{n:04d}", f"x{n}@example.org").status_code for n in range(11)]
    assert codes == [400] * 10 + [429]


def test_a_later_address_voids_the_earlier_link(publication, reader, commit):
    with commit():
        post_join(reader.join_code, "first@example.org")
    with commit():
        post_join(reader.join_code, "second@example.org", ip="192.0.2.9")
    first, second = mail.outbox
    assert Client().get(confirm_link(first)).status_code == 404
    Client().post(confirm_link(first))
    assert Subscription.objects.get().status == Status.OFFLINE
    Client().post(confirm_link(second))
    reader.refresh_from_db()
    assert reader.email == "second@example.org"


def test_the_link_expires_after_seven_days(publication, reader, commit):
    with commit():
        post_join(reader.join_code)
    link = confirm_link(mail.outbox[0])
    with time_machine.travel(timezone.now() + timezone.timedelta(days=8)):
        response = Client().post(link)
    assert response.status_code == 400 and "expired" in response.text
    assert Subscription.objects.get().status == Status.OFFLINE


def test_a_suppressed_address_gets_the_same_answer_and_no_email(publication, reader, commit):
    suppression_add(email="gone@example.org", reason="bounced", source="esp")
    with commit():
        response = post_join(reader.join_code, "gone@example.org")
    assert response.status_code == 200 and "Check your email" in response.text
    assert mail.outbox == []


def test_an_address_that_is_already_a_subscriber_takes_the_offline_subscriptions_over(
    publication, other_publication, commit
):
    # the reader of Fortnight by email gets the Monitor by post; the letter's code
    # merges the two into the address's subscriber
    existing = make_subscription(other_publication, email="ann@example.org", name="")
    ended = make_subscription(publication, email="kim@example.org", status=Status.UNSUBSCRIBED)
    ann_by_post = offline_reader(publication, name="Ann Reader")
    kim_by_post = offline_reader(publication, name="Kim", postal_address="3 Low Rd")

    with commit():
        post_join(ann_by_post.join_code, "ann@example.org")
        post_join(kim_by_post.join_code, "kim@example.org", ip="192.0.2.2")
    for message in mail.outbox[:2]:
        with commit():
            Client().post(confirm_link(message))

    ann = existing.subscriber
    ann.refresh_from_db()
    assert ann.name == "Ann Reader"  # blank details filled in
    moved = Subscription.objects.get(publication=publication, subscriber=ann)
    assert (moved.status, moved.converted_at is not None) == (Status.ACTIVE, True)
    assert moved.events.last().reason.startswith("joined by code (moved from offline reader")
    assert not Subscription.objects.filter(subscriber=ann_by_post).exists()
    ann_by_post.refresh_from_db()
    assert (ann_by_post.email, ann_by_post.join_code, ann_by_post.source) == (
        None,
        None,
        "legacy-postal",
    )
    # Kim's own (ended) subscription is active again; the offline one ends, merged
    ended.refresh_from_db()
    assert ended.status == Status.ACTIVE
    offline = Subscription.objects.get(subscriber=kim_by_post)
    assert offline.status == Status.UNSUBSCRIBED
    assert offline.reason == f"joined by code: merged into subscription {ended.pk}"
    assert Subscriber.objects.filter(email="kim@example.org").count() == 1


def test_a_bot_filling_the_honeypot_gets_the_answer_and_nothing_happens(reader, commit):
    with commit():
        response = Client().post(
            "/join/", {"code": reader.join_code, "email": "bot@example.org", "website": "x"}
        )
    assert response.status_code == 200
    assert mail.outbox == []


def test_an_empty_form_says_what_to_fill_in(db):
    response = Client().post("/join/", {"code": "", "email": ""})
    assert response.status_code == 400
    assert "Enter the code from your letter." in response.text
    assert "Enter your email address." in response.text
