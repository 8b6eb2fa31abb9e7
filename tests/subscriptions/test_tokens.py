from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from subscriptions import tokens
from subscriptions.models import Subscription
from tests.helpers import make_subscription

Status = Subscription.Status


def path(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


@pytest.fixture
def pending(publication) -> Subscription:
    return make_subscription(publication, status=Status.PENDING)


def tampered(url: str) -> str:
    """The same link with the signed id changed (signature kept)."""
    token = path(url).rstrip("/").rpartition("/")[2]
    value, _, rest = token.partition(":")
    number, dot, nonce = value.partition(".")
    return path(url).replace(token, f"{int(number) + 1}{dot}{nonce}:{rest}")


@pytest.mark.parametrize(
    "make",
    [
        lambda s: tokens.confirm_url(s.subscriber_id, "n0nce"),
        lambda s: tokens.footer_preferences_url(s.subscriber_id),
        lambda s: tokens.unsubscribe_url(s.pk),
        lambda s: tokens.preferences_url(s.subscriber_id),
    ],
)
def test_tampered_or_garbage_tokens_get_a_helpful_400_and_change_nothing(client, pending, make):
    url = path(make(pending))
    token = url.rstrip("/").rpartition("/")[2]
    base = url[: -len(token) - 1]
    bad = [
        tampered(url),
        base + token[:-2] + "/",
        base + "nonsense/",
        base + "1:xx:yy/",
        base + "%00%0d%0a/",
        base + "x" * 2000 + "/",
    ]
    for candidate in bad:
        for method in (client.get, client.post):
            response = method(candidate)
            assert response.status_code in (400, 404), candidate
            assert "This link does not work" in response.text
    pending.refresh_from_db()
    assert pending.status == Status.PENDING


def test_a_token_for_one_purpose_does_not_work_for_another(client, pending):
    confirm_token = tokens.make_token(tokens.CONFIRM, pending.subscriber_id)
    response = client.post(f"/unsubscribe/{confirm_token}/")
    assert response.status_code == 400
    unsubscribe_token = tokens.make_token(tokens.UNSUBSCRIBE, pending.pk)
    response = client.post(f"/subscribe/confirm/{unsubscribe_token}/")
    assert response.status_code == 400
    pending.refresh_from_db()
    assert pending.status == Status.PENDING


def test_confirm_link_expires_after_seven_days(client, pending):
    url = path(tokens.confirm_url(pending.subscriber_id, pending.subscriber.confirm_nonce))
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        response = client.post(url)
    assert response.status_code == 400
    assert "This link has expired" in response.text
    assert "Subscribe again" in response.text
    pending.refresh_from_db()
    assert pending.status == Status.PENDING
    with time_machine.travel(timezone.now() + timedelta(days=6, hours=23)):
        assert client.post(url).status_code == 200
    pending.refresh_from_db()
    assert pending.status == Status.ACTIVE


def test_expired_preferences_link_offers_a_fresh_one(client, pending):
    url = path(tokens.preferences_url(pending.subscriber_id))
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        response = client.get(url)
    assert response.status_code == 400
    assert "This link has expired" in response.text
    assert 'action="/preferences/"' in response.text
    assert "Email me a fresh link" in response.text


def test_unsubscribe_link_never_expires(client, publication):
    subscription = make_subscription(publication)
    url = path(tokens.unsubscribe_url(subscription.pk))
    with time_machine.travel(timezone.now() + timedelta(days=3650)):
        response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    subscription.refresh_from_db()
    assert subscription.status == Status.UNSUBSCRIBED


def test_a_token_signed_with_another_key_is_refused(client, pending):
    forged = signing.TimestampSigner(key="not-our-secret", salt=tokens.UNSUBSCRIBE).sign(
        str(pending.pk)
    )
    assert (
        client.post(f"/unsubscribe/{forged}/", {"List-Unsubscribe": "One-Click"}).status_code == 400
    )


def test_a_token_signed_before_a_key_rotation_still_reads(settings):
    old = tokens.make_token(tokens.UNSUBSCRIBE, 7)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "k" * 40

    assert tokens.read_token(tokens.UNSUBSCRIBE, old) == "7"
    assert tokens.make_token(tokens.UNSUBSCRIBE, 7) != old


def test_links_made_for_a_chunk_carry_djangos_tokens(settings):
    with time_machine.travel("2026-11-28 12:00:00", tick=False):
        link = tokens.url_maker(tokens.UNSUBSCRIBE, "unsubscribe")
        for value in (1, 42, 987654321):
            token = signing.TimestampSigner(salt=tokens.UNSUBSCRIBE).sign(str(value))
            assert link(value) == f"{settings.SITE_URL}/unsubscribe/{token}/"
