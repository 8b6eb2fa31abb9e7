from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from monitor_site.tasks import HEARTBEAT_KEY
from tests.factories import StaffFactory
from tests.helpers import CLOSED_BROKER, ROOT, child_env


@pytest.mark.django_db
def test_healthz_answers_200_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["failing"] == []


@pytest.mark.django_db
def test_anonymous_callers_see_only_ok_or_failing_per_part(client):
    cache.set(HEARTBEAT_KEY, "2026-01-01T00:00:00+00:00")
    assert client.get("/healthz").json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "delivery": "ok"},
        "failing": [],
    }


def details_for(client, **headers: str) -> dict | None:
    response = client.get("/healthz", headers=headers)
    assert response.status_code == 200
    return response.json().get("details")


@pytest.mark.django_db
def test_staff_see_the_details(client):
    cache.set(HEARTBEAT_KEY, "2026-01-01T00:00:00+00:00")
    client.force_login(StaffFactory())

    details = details_for(client)

    assert details["worker_seen"] == "2026-01-01T00:00:00+00:00"
    assert details["delivery"]["stall_seconds"] == 300
    assert details["delivery"]["queues"] == {"default": [], "send": []}  # no worker here
    assert details["delivery"]["stalled"] == [] and details["delivery"]["overdue"] == []


@pytest.mark.django_db
def test_a_logged_in_reader_who_is_not_staff_sees_no_details(client):
    client.force_login(User.objects.create_user("reader", password="pw"))
    assert details_for(client) is None


@pytest.mark.django_db
def test_the_healthz_token_shows_the_details_and_a_wrong_one_does_not(client, settings):
    settings.HEALTHZ_TOKEN = "s3cret-token"

    assert details_for(client, Authorization="Bearer s3cret-token")["delivery"]["queues"]
    assert details_for(client, Authorization="bearer s3cret-token") is not None
    assert details_for(client, Authorization="Bearer s3cret-tokeN") is None
    assert details_for(client, Authorization="Bearer s3cret") is None
    assert details_for(client, Authorization="Basic s3cret-token") is None
    assert details_for(client) is None


@pytest.mark.django_db
def test_without_a_configured_token_no_token_shows_the_details(client, settings):
    settings.HEALTHZ_TOKEN = ""
    assert details_for(client, Authorization="Bearer ") is None
    assert details_for(client, Authorization="Bearer x") is None


def healthz_in_process_with(**env: str) -> tuple[int, dict]:
    script = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz'); print(r.status_code); print(r.content.decode())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=child_env(DJANGO_ALLOWED_HOSTS="testserver", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-2:]
    return int(status), json.loads(body)


@pytest.mark.django_db
def test_healthz_names_the_broker_when_it_is_down():
    status, body = healthz_in_process_with(CELERY_BROKER_URL=CLOSED_BROKER)
    assert status == 503
    assert body["failing"] == ["broker"]
    assert body["checks"]["delivery"] == "unknown"  # it needs the broker: not asked


@pytest.mark.django_db
def test_healthz_names_the_database_when_it_is_down():
    status, body = healthz_in_process_with(DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert status == 503
    assert body["failing"] == ["database"]
    assert body["checks"]["delivery"] == "unknown"
    assert "details" not in body
