"""Shared fixtures: real services, a real Celery worker process, captured mail."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connection

from issues.models import Issue, Publication
from tests.factories import IssueFactory, PublicationFactory
from tests.helpers import (
    BROKER_DIR,
    WorkerProcess,
    child_env,
    clear_default_cache,
    purge_queues,
)


def pytest_configure(config: pytest.Config) -> None:
    # In CI the real services are required: a missing one fails the run, it never skips.
    if os.environ.get("CI"):
        missing = [v for v in ("DATABASE_URL", "CELERY_BROKER_URL") if not os.environ.get(v)]
        if missing:
            pytest.exit(f"CI is set but {', '.join(missing)} is not; refusing to run", 3)


# Production redirects to https behind a proxy and serves hashed static files from a
# collectstatic manifest; the tests speak plain http and build no manifest. Set for the
# whole session, before any live server loads its middleware.
settings.SECURE_SSL_REDIRECT = False
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


@pytest.fixture(autouse=True)
def _fresh_caches(request: pytest.FixtureRequest) -> None:
    # Pages cached by one test must not answer the next one (ids are reused).
    caches["pages"].clear()
    # Rate-limit counts live in Redis or the database cache; both outlive a test.
    names = request.fixturenames
    if "transactional_db" in names or "live_server" in names:
        request.getfixturevalue("transactional_db")
    elif "db" in names:
        request.getfixturevalue("db")
    else:
        return
    clear_default_cache()


@pytest.fixture
def publication(db) -> Publication:
    """*The Monitor*, as tests.factories.PublicationFactory makes it."""
    return PublicationFactory()


@pytest.fixture
def issue(publication) -> Issue:
    """Issue 11 of volume 6 of the publication, approved, with two articles."""
    return IssueFactory(volume__publication=publication, number=11, status=Issue.Status.APPROVED)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if BROKER_DIR is not None and BROKER_DIR.exists():
        shutil.rmtree(BROKER_DIR, ignore_errors=True)


@pytest.fixture
def celery_worker_process(
    transactional_db: None, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes on the configured broker and the test database.

    Tests that use it see committed rows only, so they run with `transactional_db`."""
    started: list[WorkerProcess] = []
    purge_queues()

    def start(
        *,
        concurrency: int = 2,
        beat: bool = False,
        queues: tuple[str, ...] | None = None,
        **extra_env: str,
    ) -> WorkerProcess:
        # Connections must not be shared with forked children: close ours first.
        connection.close()
        worker = WorkerProcess(
            tmp_path / f"worker-{len(started)}.log",
            child_env(**extra_env),
            concurrency,
            beat,
            queues,
        )
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
    purge_queues()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run transactional tests after the others, again. pytest-django sorts them last,
    but pytest then groups the browser tests by their session-scoped `browser_name`
    parameter and moves them first; their flush empties the groups and permissions
    that migrations made, which the tests after them need. A stable sort keeps every
    other order as it was."""

    def transactional(item: pytest.Item) -> bool:
        marker = item.get_closest_marker("django_db")
        fixtures = getattr(item, "fixturenames", ())
        return bool(
            (marker and marker.kwargs.get("transaction"))
            or "transactional_db" in fixtures
            or "live_server" in fixtures
        )

    items.sort(key=transactional)
