from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT, child_env


@pytest.mark.django_db
def test_healthz_answers_200_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["failing"] == []


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
    status, body = healthz_in_process_with(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    assert status == 503
    assert body["failing"] == ["broker"]


@pytest.mark.django_db
def test_healthz_names_the_database_when_it_is_down():
    status, body = healthz_in_process_with(DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert status == 503
    assert body["failing"] == ["database"]
