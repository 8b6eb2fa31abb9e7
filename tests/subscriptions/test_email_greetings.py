"""Nothing a requester typed reaches an address that has not been confirmed: the emails
that can go to one greet with a plain "Hello,"."""

from __future__ import annotations

from django.core import mail
from django.test import Client

from subscriptions.models import Subscriber, Subscription
from tests.helpers import confirm_current_request, make_subscription

Status = Subscription.Status
SPAM = {"name": "Win a prize at spam.example", "organization": "Call 555-0100 now"}


def parts(message) -> list[str]:
    return [message.subject, message.body, message.alternatives[0][0]]


def assert_neutral(message) -> None:
    for part in parts(message):
        assert "spam.example" not in part and "555-0100" not in part, part
    assert message.body.startswith("Hello,\n")
    assert "<p>Hello,</p>" in message.alternatives[0][0]


def subscribe(commit, email: str = "victim@example.org") -> None:
    with commit():
        Client().post("/subscribe/", {"email": email, "publications": "monitor", **SPAM})


def test_the_confirmation_to_a_new_address_echoes_nothing_typed(publication, commit):
    subscribe(commit)
    assert Subscriber.objects.get().name == SPAM["name"]  # kept, for after confirmation
    (confirmation,) = mail.outbox
    assert_neutral(confirmation)


def test_a_preferences_link_to_an_unconfirmed_address_echoes_nothing_typed(publication, commit):
    subscribe(commit)
    with commit():
        Client().post("/preferences/", {"email": "victim@example.org"})
    assert len(mail.outbox) == 2
    assert_neutral(mail.outbox[1])


def test_a_confirmed_reader_is_greeted_by_name(publication, commit):
    make_subscription(
        publication, email="ann@example.org", name="Ann Reader", status=Status.PENDING
    )
    with commit():
        assert confirm_current_request(Subscriber.objects.get())
        Client().post("/preferences/", {"email": "ann@example.org"})
    assert mail.outbox[-1].body.startswith("Hello Ann Reader,\n")


def test_a_stranger_cannot_name_a_confirmed_reader(publication, other_publication, commit):
    subscription = make_subscription(
        publication, email="victim@example.org", name="", status=Status.PENDING
    )
    with commit():
        assert confirm_current_request(subscription.subscriber)
    with commit():
        Client().post("/subscribe/", {"email": "victim@example.org", "publications": "fortnight"})
    subscribe(commit)
    subscriber = Subscriber.objects.get()
    assert (subscriber.name, subscriber.organization) == ("", "")
    for message in mail.outbox:
        for part in parts(message):
            assert "spam.example" not in part
