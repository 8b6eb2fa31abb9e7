"""django-axes locks a username from one client address, never the username everywhere."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.5"
LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "right-pass-123"


@pytest.fixture
def admin_user(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # what is under test is who gets locked, not the password hasher's cost
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return get_user_model().objects.create_superuser("admin", "a@example.org", PASSWORD)


def log_in(forwarded: str, password: str, username: str = "admin"):
    client = Client()
    response = client.post(
        LOGIN,
        {"username": username, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    return response.status_code, "_auth_user_id" in client.session


def test_ten_bad_logins_lock_admin_from_that_address_only(settings, admin_user):
    codes = [log_in("203.0.113.7", "wrong")[0] for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert codes[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert codes[-1] == 429

    assert log_in("203.0.113.7", PASSWORD) == (429, False)
    assert log_in("198.51.100.20", PASSWORD) == (302, True)
    # the other address's success does not lift the lock of the first
    assert log_in("203.0.113.7", PASSWORD) == (429, False)


def test_the_locked_address_can_still_log_in_as_someone_else(settings, admin_user):
    get_user_model().objects.create_superuser("editor", "e@example.org", PASSWORD)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in("203.0.113.7", "wrong")
    assert log_in("203.0.113.7", PASSWORD, username="editor") == (302, True)


def test_a_client_cannot_escape_the_lock_by_sending_its_own_forwarded_for(settings, admin_user):
    # the proxy appends the real peer; whatever the client put on the left is ignored
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(f"192.0.2.{n}, 203.0.113.7", "wrong")
    assert log_in("192.0.2.99, 203.0.113.7", PASSWORD) == (429, False)


def test_without_a_trusted_proxy_the_forwarded_header_changes_nothing(settings, admin_user):
    settings.TRUSTED_PROXY_COUNT = 0
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(f"192.0.2.{n}", "wrong")
    assert log_in("198.51.100.20", PASSWORD) == (429, False)
