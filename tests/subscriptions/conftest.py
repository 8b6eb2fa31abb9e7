"""Fixtures for the subscriptions tests.

Emails go out through Celery after commit. Here, outside tests marked `worker`, a task
sent with `.delay()` runs its body at once in the test process (Celery itself stays as
configured), and `commit()` runs the on-commit callbacks of the code inside it."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from celery.app.task import Task
from django.test import Client

from issues.models import Publication
from tests.factories import PublicationFactory


@pytest.fixture(autouse=True)
def _tasks_run_in_process(request, monkeypatch) -> None:
    if request.node.get_closest_marker("worker"):
        return

    def apply_async(self, args=None, kwargs=None, **options):
        self.run(*(args or ()), **(kwargs or {}))

    monkeypatch.setattr(Task, "apply_async", apply_async)


@pytest.fixture
def commit(django_capture_on_commit_callbacks) -> Callable:
    """`with commit(): ...` runs what was queued for after commit (emails)."""
    return functools.partial(django_capture_on_commit_callbacks, execute=True)


@pytest.fixture
def other_publication(db) -> Publication:
    return PublicationFactory(name="Fortnight in Review", slug="fortnight")


@pytest.fixture
def gated_publication(db) -> Publication:
    return PublicationFactory(name="Restricted Brief", slug="brief", requires_approval=True)


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)
