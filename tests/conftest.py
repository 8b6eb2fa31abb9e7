"""Shared fixtures: real services, a real Celery worker process, captured mail."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.db import connection

from monitor_site.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
SEND_QUEUES = ("default", "send")


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
    # Rate-limit counts live in the database cache, which outlives transactional tests.
    names = request.fixturenames
    if "transactional_db" in names or "live_server" in names:
        request.getfixturevalue("transactional_db")
    elif "db" in names:
        request.getfixturevalue("db")
    else:
        return
    cache.clear()


_broker_dir: Path | None = None
if celery_app.conf.broker_url.startswith("filesystem://"):
    # One broker folder per test session, shared with the worker processes it starts.
    _broker_dir = Path(settings.VAR_DIR) / f"test-broker-{os.getpid()}"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    celery_app.conf.broker_transport_options = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _broker_dir is not None and _broker_dir.exists():
        import shutil

        shutil.rmtree(_broker_dir, ignore_errors=True)


def database_url() -> str:
    """The URL of the test database, for processes started by a test."""
    sd = connection.settings_dict
    if sd["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{sd['NAME']}"
    auth = quote(sd["USER"] or "", safe="")
    if sd.get("PASSWORD"):
        auth += ":" + quote(sd["PASSWORD"], safe="")
    return f"postgres://{auth}@{sd['HOST'] or '127.0.0.1'}:{sd['PORT'] or 5432}/{sd['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a process that must share this test's database and broker."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="monitor_site.settings",
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=celery_app.conf.broker_url,
        SITE_URL=settings.SITE_URL,
        PYTHONUNBUFFERED="1",
    )
    if _broker_dir is not None:
        env["MONITOR_BROKER_DIR"] = str(_broker_dir)
    env.update(extra)
    return env


def purge_queues() -> None:
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in SEND_QUEUES:
            try:
                channel.queue_purge(queue)
            except Exception:  # noqa: S112 - a queue that does not exist yet holds nothing
                continue


class WorkerProcess:
    """A `celery -A monitor_site worker` child process; its log is kept for failures."""

    def __init__(self, log_path: Path, env: dict[str, str], concurrency: int, beat: bool) -> None:
        self.log_path = log_path
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "monitor_site",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            f"--queues={','.join(SEND_QUEUES)}",
            f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            args += ["--beat", f"--schedule={log_path.with_suffix('.beat')}"]
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the whole worker: the main process and its pool children."""
        import signal

        children = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        self.proc.send_signal(signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        # No graceful shutdown needed at the end of a test: what it sends is recorded.
        if self.proc.poll() is None:
            self.kill()
        self._log.close()


@pytest.fixture
def celery_worker_process(
    transactional_db: None, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes on the configured broker and the test database.

    Tests that use it see committed rows only, so they run with `transactional_db`."""
    started: list[WorkerProcess] = []
    purge_queues()

    def start(*, concurrency: int = 2, beat: bool = False, **extra_env: str) -> WorkerProcess:
        # Connections must not be shared with forked children: close ours first.
        connection.close()
        worker = WorkerProcess(
            tmp_path / f"worker-{len(started)}.log", child_env(**extra_env), concurrency, beat
        )
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
    purge_queues()


def wait_for(predicate: Callable[[], object], timeout: float = 60, interval: float = 0.2) -> object:
    """Poll until predicate() is truthy; fail with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


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
