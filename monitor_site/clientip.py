"""The client's IP address, for rate limits, django-axes and consent records.

Each proxy in front of gunicorn appends the address it received the request from to
X-Forwarded-For, so with N trusted proxies (MONITOR_TRUSTED_PROXY_COUNT) the client is
the N-th entry from the right: with one proxy, the right-most entry. Entries further
left were sent by the client itself and are never believed. With N = 0, or when the
header holds fewer than N entries or the N-th is not an IP address, the client is the
web server's peer (REMOTE_ADDR): a wrong header then shares the proxy's limits instead
of choosing its own."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

# What the rate limiter counts against when not even REMOTE_ADDR is an address (a Unix
# socket with no proxy count): one shared bucket rather than no limit at all.
UNKNOWN = "0.0.0.0"  # noqa: S104 - a counter key, never bound to


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as a normalized IP address string, or None if unknown."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if len(forwarded) >= hops:
            address = _ip(forwarded[-hops])
            if address is not None:
                return address
    return _ip(request.META.get("REMOTE_ADDR", ""))


def ratelimit_ip(request: HttpRequest) -> str:
    """`client_ip` for django-ratelimit (RATELIMIT_IP_META_KEY), which needs an address."""
    return client_ip(request) or UNKNOWN


def _ip(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:  # fe80::1%eth0 names an interface of the proxy, not a client
            return None
        if address.ipv4_mapped:
            address = address.ipv4_mapped
    return str(address)
