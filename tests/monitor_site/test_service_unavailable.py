"""Redis, the broker or the database not answering gives the visitor a 503 page with
Retry-After, never a 500, and the operator a logged error."""

from __future__ import annotations

import logging

import pytest
import requests
from django.conf import settings
from django.test import override_settings

from subscriptions.models import EmailCooldown, Subscriber
from tests.helpers import CLOSED_BROKER, cache_is_redis, form_post, running_site

TRY_AGAIN = "Please try again in a few minutes."


@pytest.mark.django_db
def test_with_the_cache_down_subscribing_answers_503_and_logs_it(client, publication, caplog):
    down = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": CLOSED_BROKER}}
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
    cache_url = settings.CACHES["default"]["LOCATION"]
    with running_site(CELERY_BROKER_URL=CLOSED_BROKER, MONITOR_CACHE_URL=cache_url) as site:
        session = requests.Session()
        home = session.get(site.base + "/", timeout=30)
        response = form_post(
            session,
            site.base + "/subscribe/",
            {"email": "ann@example.org", "publications": publication.slug},
        )
    assert home.status_code == 200, site.log
    assert response.status_code == 503, site.log
    assert TRY_AGAIN in response.text
    assert "POST /subscribe/: a service is not answering: OperationalError" in site.log
    # The request is kept, pending, and the email slot given back: asking again (once the
    # broker is back) sends the email.
    assert Subscriber.objects.get().email == "ann@example.org"
    assert not EmailCooldown.objects.exists()
