"""The client address behind the proxies we run (MONITOR_TRUSTED_PROXY_COUNT), and the
records that keep it."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from monitor_site.clientip import client_ip, ratelimit_ip
from subscriptions.models import ContactMessage, Subscriber
from tests.factories import PublicationFactory

PROXY = "10.0.0.5"


def request(forwarded: str | None = None, remote: str = PROXY):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().post("/subscribe/", **extra)


@pytest.mark.parametrize(
    ("count", "forwarded", "client"),
    [
        (0, "203.0.113.7", PROXY),  # no proxy trusted: the header is anyone's
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the left entry is the client's own
        (1, "6.6.6.6,203.0.113.7", "203.0.113.7"),
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        (2, "203.0.113.7, 10.0.0.9", "203.0.113.7"),
        (2, "203.0.113.7", PROXY),  # fewer entries than proxies: not through all of them
        (1, None, PROXY),  # straight to the web server
        (1, "", PROXY),
        (1, "unknown", PROXY),
        (1, "6.6.6.6, garbage", PROXY),  # never the client-supplied entry instead
        (1, "203.0.113.7:443", PROXY),
        (1, "<script>", PROXY),
        (1, "fe80::1%eth0", PROXY),  # an interface of the proxy, not a client
        (1, "2001:DB8::1", "2001:db8::1"),
        (1, "::ffff:192.0.2.1", "192.0.2.1"),
        (1, "x" * 8000, PROXY),
    ],
)
def test_the_client_is_the_entry_our_last_trusted_proxy_wrote(settings, count, forwarded, client):
    settings.TRUSTED_PROXY_COUNT = count
    assert client_ip(request(forwarded)) == client


def test_without_any_address_the_rate_limiter_still_gets_one(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    unknown = request("not an address", remote="")
    assert client_ip(unknown) is None
    assert ratelimit_ip(unknown) == "0.0.0.0"  # noqa: S104 - a counter key
    assert ratelimit_ip(request("203.0.113.7")) == "203.0.113.7"


def through_proxy(client: Client, url: str, data: dict[str, str], forwarded: str):
    return client.post(url, data, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)


@pytest.mark.django_db
def test_consent_and_contact_records_keep_the_forwarded_client(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    PublicationFactory()
    subscribe = {"email": "ann@example.org", "publications": "monitor"}
    response = through_proxy(Client(), "/subscribe/", subscribe, "6.6.6.6, 203.0.113.7")
    assert response.status_code == 200
    assert Subscriber.objects.get().consent_ip == "203.0.113.7"
    contact = {"name": "Ann", "email": "ann@example.org", "subject": "Hi", "body": "Hello"}
    assert through_proxy(Client(), "/contact/", contact, "198.51.100.4").status_code == 200
    assert ContactMessage.objects.get().ip == "198.51.100.4"


@pytest.mark.django_db
def test_a_malformed_header_is_recorded_as_the_proxy_and_never_fails(
    settings,
):
    settings.TRUSTED_PROXY_COUNT = 1
    PublicationFactory()
    data = {"email": "ann@example.org", "publications": "monitor"}
    response = through_proxy(Client(), "/subscribe/", data, "203.0.113.7, fe80::1%eth0")
    assert response.status_code == 200
    assert Subscriber.objects.get().consent_ip == PROXY
