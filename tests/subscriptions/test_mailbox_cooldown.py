"""One confirmation (and one preferences link) per mailbox per ten minutes, however the
address is written."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connections
from django.test import Client
from django.utils import timezone

from subscriptions import services
from subscriptions.mailbox import mailbox
from subscriptions.models import Subscriber
from tests.helpers import make_subscription


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("Alice@Example.org", "alice@example.org"),
        ("alice+news@example.org", "alice@example.org"),
        ("a.lice@example.org", "a.lice@example.org"),  # dots matter elsewhere
        ("A.lice+1@gmail.com", "alice@gmail.com"),
        ("alice+2@GMAIL.com", "alice@gmail.com"),
        ("a.l.i.c.e@googlemail.com", "alice@gmail.com"),
        (" alice@gmail.com. ", "alice@gmail.com"),
        ("+only@example.org", "+only@example.org"),
        ("not an address", "not an address"),
        ("", ""),
    ],
)
def test_mailbox_of_an_address(address, key):
    assert mailbox(address) == key


def subscribe(commit, email: str, ip: str) -> None:
    with commit():
        Client().post("/subscribe/", {"email": email, "publications": "monitor"}, REMOTE_ADDR=ip)


def test_variants_of_one_mailbox_get_one_confirmation(publication, commit):
    variants = ["A.lice+1@gmail.com", "alice+2@GMAIL.com", "a.l.i.c.e@googlemail.com"]
    for n, email in enumerate(variants):
        subscribe(commit, email, f"192.0.2.{n}")
    assert len(mail.outbox) == 1
    # each variant is its own subscriber: nobody is merged
    assert Subscriber.objects.count() == 3


def test_different_mailboxes_each_get_their_confirmation(publication, commit):
    for n, email in enumerate(["a.b@example.org", "ab@example.org", "alice@gmail.com"]):
        subscribe(commit, email, f"192.0.2.{n}")
    assert len(mail.outbox) == 3


def test_the_mailbox_gets_another_confirmation_after_ten_minutes(publication, commit):
    subscribe(commit, "alice@gmail.com", "192.0.2.1")
    with time_machine.travel(timezone.now() + timedelta(minutes=9)):
        subscribe(commit, "a.lice+x@gmail.com", "192.0.2.2")
    assert len(mail.outbox) == 1
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        subscribe(commit, "a.lice+x@gmail.com", "192.0.2.3")
    assert [m.to for m in mail.outbox] == [["alice@gmail.com"], ["a.lice+x@gmail.com"]]


def test_variants_of_one_mailbox_get_one_preferences_link(publication, commit):
    for email in ("alice@gmail.com", "a.lice+1@gmail.com"):
        make_subscription(publication, email=email)
    for email in ("alice@gmail.com", "a.lice+1@gmail.com", "ALICE@gmail.com"):
        with commit():
            Client().post("/preferences/", {"email": email})
    assert [m.to for m in mail.outbox] == [["alice@gmail.com"]]


def test_simultaneous_requests_for_variants_send_one_confirmation(transactional_db, publication):
    variants = [f"alice+{n}@gmail.com" for n in range(8)]
    Subscriber.objects.bulk_create(Subscriber(email=email) for email in variants)
    start = threading.Barrier(len(variants))

    def one(email: str) -> bool:
        try:
            start.wait()
            return services.confirmation_send(subscriber=Subscriber.objects.get(email=email))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(len(variants)) as pool:
        claimed = list(pool.map(one, variants))
    assert claimed.count(True) == 1
