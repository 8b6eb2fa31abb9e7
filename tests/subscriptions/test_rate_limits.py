"""Rate limits per forwarded client and per mailbox, counted atomically."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import time_machine
from django.db import connections
from django.test import Client
from django.utils import timezone

from subscriptions.models import Subscriber
from tests.helpers import cache_is_redis

PROXY = "10.0.0.5"


def subscribe(email: str, *, forwarded: str | None = None, remote: str = PROXY) -> int:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    data = {"email": email, "publications": "monitor"}
    return Client().post("/subscribe/", data, **extra).status_code


@pytest.fixture
def still_clock():
    # the limit's one-minute window must not roll over between requests
    with time_machine.travel(timezone.now(), tick=False):
        yield


def test_each_forwarded_client_has_its_own_limit_behind_the_proxy(
    settings, publication, still_clock
):
    settings.TRUSTED_PROXY_COUNT = 1
    codes = [subscribe(f"p{n}@example.org", forwarded="203.0.113.7") for n in range(11)]
    assert codes == [200] * 10 + [429]
    assert subscribe("other@example.org", forwarded="198.51.100.20") == 200
    # a value of the client's own on the left does not make it someone else
    assert subscribe("again@example.org", forwarded="192.0.2.1, 203.0.113.7") == 429
    assert not Subscriber.objects.filter(email__in=["p10@example.org", "again@example.org"])


def test_without_a_trusted_proxy_everyone_behind_it_shares_one_limit(
    settings, publication, still_clock
):
    settings.TRUSTED_PROXY_COUNT = 0
    codes = [subscribe(f"p{n}@example.org", forwarded=f"192.0.2.{n}") for n in range(11)]
    assert codes == [200] * 10 + [429]


def test_variants_of_one_mailbox_share_the_per_address_limit(publication, still_clock):
    variants = [f"A.lice+{n}@gmail.com" for n in range(5)] + [
        f"alice+{n}@GOOGLEMAIL.com" for n in range(5)
    ]
    codes = [subscribe(email, remote=f"192.0.2.{n}") for n, email in enumerate(variants)]
    assert codes == [200] * 10
    assert subscribe("a.l.i.c.e@gmail.com", remote="192.0.2.200") == 429
    assert subscribe("bob@gmail.com", remote="192.0.2.201") == 200


@pytest.mark.skipif(not cache_is_redis(), reason="atomic counters need the Redis cache")
def test_concurrent_requests_never_pass_the_limit(transactional_db, publication, still_clock):
    requests = 24
    start = threading.Barrier(requests)

    def one(n: int) -> int:
        try:
            start.wait()
            return subscribe(f"c{n}@example.org", remote="203.0.113.9")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(requests) as pool:
        codes = list(pool.map(one, range(requests)))
    assert sorted(codes) == [200] * 10 + [429] * (requests - 10)
    assert Subscriber.objects.count() == 10
