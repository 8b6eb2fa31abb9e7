"""Redis, the broker or the database not answering gives the visitor a 503 page with
Retry-After, never a 500, and the operator a logged error."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest
import requests
from django.conf import settings
from django.test import override_settings

from subscriptions.models import EmailCooldown, Subscriber
from tests.helpers import cache_is_redis, child_env, free_port, wait_for

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1
TRY_AGAIN = "Please try again in a few minutes."


def form_post(base: str, path: str, data: dict) -> requests.Response:
    """A GET for the form's CSRF token and cookie, then the POST, as a browser does."""
    page = requests.get(base + path, timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    cookie = page.cookies["csrftoken"]
    return requests.post(
        base + path,
        data={**data, "csrfmiddlewaretoken": token},
        headers={"Cookie": f"csrftoken={cookie}"},
        allow_redirects=False,
        timeout=30,
    )


@pytest.mark.django_db
def test_with_the_cache_down_subscribing_answers_503_and_logs_it(client, publication, caplog):
    down = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": CLOSED}}
    down["default"]["BACKEND"] = "django.core.cache.backends.redis.RedisCache"
    with override_settings(CACHES=down), caplog.at_level(logging.ERROR):
        response = client.post(
            "/subscribe/", {"email": "ann@example.org", "publications": [publication.slug]}
        )
    assert response.status_code == 503
    assert response["Retry-After"] == "120"
    assert "no-cache" in response["Cache-Control"]
    assert TRY_AGAIN in response.content.decode()
    assert "POST /subscribe/: a service is not answering: ConnectionError" in caplog.text
    assert not Subscriber.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not cache_is_redis(), reason="the cache must answer while the broker does not")
def test_with_the_broker_down_subscribing_answers_503_and_pages_still_load(publication):
    port = free_port()
    env = child_env(
        CELERY_BROKER_URL=CLOSED,
        MONITOR_CACHE_URL=settings.CACHES["default"]["LOCATION"],
        DJANGO_DEBUG="1",  # static files without a collectstatic manifest
    )
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base), timeout=60)
        home = requests.get(base + "/", timeout=30)
        response = form_post(
            base, "/subscribe/", {"email": "ann@example.org", "publications": publication.slug}
        )
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[0]
    assert home.status_code == 200, log
    assert response.status_code == 503, log
    assert TRY_AGAIN in response.text
    assert "POST /subscribe/: a service is not answering: OperationalError" in log
    # The request is kept, pending, and the email slot given back: asking again (once the
    # broker is back) sends the email.
    assert Subscriber.objects.get().email == "ann@example.org"
    assert not EmailCooldown.objects.exists()


def _answers(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=5).status_code in (200, 503)
    except requests.ConnectionError:
        return False
