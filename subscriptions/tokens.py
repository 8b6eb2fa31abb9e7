"""Signed tokens for links in email: one salt per purpose, no address in any URL.

Confirm and join links expire after 7 days, invitations to legacy readers after 60 days
and preference links after 24 hours; an unsubscribe link works for as long as the
subscription exists. A confirm link signs the subscriber and the nonce of the request it
was sent for (`Subscriber.confirm_nonce`). Preference links in issue footers have a
purpose of their own: an issue may be forwarded, so only a link from an email sent on its
own, and younger than PROOF_MAX_AGE, proves that whoever opens it reads the address."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

CONFIRM = "subscriptions.confirm"
PREFERENCES = "subscriptions.preferences"
FOOTER_PREFERENCES = "subscriptions.preferences.footer"
UNSUBSCRIBE = "subscriptions.unsubscribe"
JOIN = "subscriptions.join"
INVITATION = "subscriptions.invitation"

MAX_AGE: dict[str, timedelta | None] = {
    CONFIRM: timedelta(days=7),
    PREFERENCES: timedelta(hours=24),
    FOOTER_PREFERENCES: timedelta(hours=24),
    UNSUBSCRIBE: None,
    JOIN: timedelta(days=7),
    INVITATION: timedelta(days=60),
}
PROOF_MAX_AGE = timedelta(minutes=10)


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


def read_confirm_token(token: str) -> tuple[int, str]:
    """The subscriber id and request nonce of a confirm link. A link signed before
    nonces existed carries the id alone: its nonce is "", which matches only a
    subscriber that no confirmation, confirm or ending has touched since."""
    subscriber_id, _, nonce = read_token(CONFIRM, token).partition(".")
    if not subscriber_id.isdigit():
        raise BadToken("This link is not valid.")
    return int(subscriber_id), nonce


def read_preferences_token(token: str) -> tuple[int, bool]:
    """The subscriber id of a preferences link, and whether the link proves the address
    (emailed on its own, not in an issue footer, and younger than PROOF_MAX_AGE)."""
    try:
        subscriber_id = read_id_token(PREFERENCES, token)
    except BadToken as exc:
        if exc.expired:
            raise
        return read_id_token(FOOTER_PREFERENCES, token), False
    try:
        signer(PREFERENCES).unsign(token, max_age=PROOF_MAX_AGE)
    except signing.SignatureExpired:
        return subscriber_id, False
    return subscriber_id, True


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
    """For an email to this one reader (a preferences link, a welcome)."""
    return url_maker(PREFERENCES, "preferences")(subscriber_id)


def footer_preferences_url(subscriber_id: int) -> str:
    """For an issue's footer."""
    return url_maker(FOOTER_PREFERENCES, "preferences")(subscriber_id)


def confirm_url(subscriber_id: int, nonce: str) -> str:
    token = make_token(CONFIRM, f"{subscriber_id}.{nonce}")
    return f"{settings.SITE_URL}/subscribe/confirm/{token}/"


def invitation_url(subscription_id: int) -> str:
    return f"{settings.SITE_URL}/subscribe/invitation/{make_token(INVITATION, subscription_id)}/"


def join_email_digest(email: str) -> str:
    """A keyed digest of the address typed with a join code: the link names the address
    without showing it, and a later request with another address voids it."""
    return salted_hmac(JOIN, email.strip().lower()).hexdigest()[:20]


def join_url(subscriber_id: int, email: str) -> str:
    token = make_token(JOIN, f"{subscriber_id}.{join_email_digest(email)}")
    return f"{settings.SITE_URL}/join/confirm/{token}/"


def read_join_token(token: str) -> tuple[int, str]:
    """(subscriber id, address digest) of a join link, or BadToken."""
    subscriber_id, _, digest = read_token(JOIN, token).partition(".")
    if not subscriber_id.isdigit() or not digest:
        raise BadToken("This link is not valid.")
    return int(subscriber_id), digest
