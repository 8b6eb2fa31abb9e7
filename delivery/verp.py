"""VERP (variable envelope return path): each message sent over SMTP carries its own
envelope sender, `bounces+<key>@<MONITOR_BOUNCE_DOMAIN>`, so that a delivery report
names the delivery it is about whatever the remote system writes in it.

The key is the delivery row's id signed with django.core.signing (salt
"delivery.verp", under DJANGO_SECRET_KEY and its fallbacks): nobody without the secret
can write a key that names a delivery, so a forged report cannot suppress a reader.
Without a bounce domain the envelope sender stays the message's sender (the From
address or DEFAULT_FROM_EMAIL), as before. The ESP path never uses this: the ESP
reports bounces by webhook.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core import signing

LOCAL_PART = "bounces"


def _signer() -> signing.Signer:
    # "." is not in the signature's alphabet (URL-safe base64) and may be in a local part.
    return signing.Signer(salt="delivery.verp", sep=".")


class ForgedKey(ValueError):
    """A VERP address of ours whose key is not one we signed."""


def envelope_sender(*, default: str, delivery_id: int) -> str:
    """The MAIL FROM of the message for this delivery row: its VERP address when a
    bounce domain is configured, else `default`."""
    domain = settings.BOUNCE_DOMAIN
    if not domain:
        return default
    return f"{LOCAL_PART}+{_signer().sign(str(delivery_id))}@{domain}"


def addresses_in(text: str) -> list[str]:
    """The keys of the VERP addresses of our bounce domain that appear in `text`."""
    domain = settings.BOUNCE_DOMAIN
    if not domain:
        return []
    pattern = rf"\b{LOCAL_PART}\+([A-Za-z0-9._=-]{{1,120}})@{re.escape(domain)}\b"
    return list(dict.fromkeys(re.findall(pattern, text, flags=re.IGNORECASE)))


def delivery_id(key: str) -> int:
    """The delivery a key names. Raises ForgedKey for a key we did not sign."""
    try:
        value = _signer().unsign(key)
    except signing.BadSignature:
        raise ForgedKey(f"bad VERP signature: {key[:80]!r}") from None
    if not value.isdigit():
        raise ForgedKey(f"VERP key names no delivery: {key[:80]!r}")
    return int(value)
