"""Signed tokens for links in email: one salt per purpose, no address in any URL.

Confirm links expire after 7 days and preference links after 24 hours; an unsubscribe
link works for as long as the subscription exists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing

CONFIRM = "subscriptions.confirm"
PREFERENCES = "subscriptions.preferences"
UNSUBSCRIBE = "subscriptions.unsubscribe"

MAX_AGE: dict[str, timedelta | None] = {
    CONFIRM: timedelta(days=7),
    PREFERENCES: timedelta(hours=24),
    UNSUBSCRIBE: None,
}


class BadToken(Exception):
    """The token was tampered with, is malformed, or has expired."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@lru_cache(maxsize=16)
def _signer(purpose: str, secret_key: str) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=purpose)


def signer(purpose: str) -> signing.TimestampSigner:
    """The signer of one purpose, built once (per secret key: tests change it)."""
    return _signer(purpose, settings.SECRET_KEY)


def make_token(purpose: str, value: int | str) -> str:
    return signer(purpose).sign(str(value))


def read_token(purpose: str, token: str) -> str:
    """The signed value, or BadToken."""
    try:
        return signer(purpose).unsign(token, max_age=MAX_AGE[purpose])
    except signing.SignatureExpired:
        raise BadToken("This link has expired.", expired=True) from None
    except signing.BadSignature:
        raise BadToken("This link is not valid.") from None


def read_id_token(purpose: str, token: str) -> int:
    value = read_token(purpose, token)
    if not value.isdigit():
        raise BadToken("This link is not valid.")
    return int(value)


def url_maker(purpose: str, path: str) -> Callable[[int], str]:
    """`<SITE_URL>/<path>/<token>/` for one value after another (the recipients of an
    issue's chunk), with the signer and the site address looked up once. The tokens
    are `make_token`'s."""
    sign = signer(purpose).sign
    head = f"{settings.SITE_URL}/{path}/"

    def url(value: int) -> str:
        return f"{head}{sign(str(value))}/"

    return url


def unsubscribe_url(subscription_id: int) -> str:
    return url_maker(UNSUBSCRIBE, "unsubscribe")(subscription_id)


def preferences_url(subscriber_id: int) -> str:
    return url_maker(PREFERENCES, "preferences")(subscriber_id)


def confirm_url(subscriber_id: int) -> str:
    return f"{settings.SITE_URL}/subscribe/confirm/{make_token(CONFIRM, subscriber_id)}/"
