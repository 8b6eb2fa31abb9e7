"""Where the benchmarks run: a dedicated database and broker, never the developer's.

* Database: PostgreSQL when `DATABASE_URL` points at it, or when none is set and a
  server answers on 127.0.0.1:5432; the bench creates its own database on that server
  (`monitor_bench`, or `MONITOR_BENCH_DB`) and drops it at the end. Else a throwaway
  SQLite file under var/bench/.
* Broker: Redis when `CELERY_BROKER_URL` points at it, or when none is set and a server
  answers on 127.0.0.1:6379; the bench uses its own Redis db there (14, or
  `MONITOR_BENCH_REDIS_DB`) and purges only its queues. RabbitMQ when
  `CELERY_BROKER_URL` is an `amqp://` URL (its queues are purged). Else the filesystem
  transport in a folder of its own.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Target:
    database_url: str
    database: str  # "postgresql" or "sqlite"
    database_note: str
    broker_url: str
    broker: str  # "redis", "rabbitmq" or "filesystem"
    broker_note: str
    admin_url: str | None = None  # where CREATE/DROP DATABASE are run (PostgreSQL)
    db_name: str = ""


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def choose() -> Target:
    db_name = os.environ.get("MONITOR_BENCH_DB", "monitor_bench")
    given = os.environ.get("DATABASE_URL", "").strip()
    if given.startswith(("postgres://", "postgresql://")):
        server = given
        note = f"PostgreSQL server from DATABASE_URL, database {db_name}"
    elif not given and _reachable("127.0.0.1", 5432):
        server = "postgres://postgres@127.0.0.1:5432/postgres"
        note = f"PostgreSQL found on 127.0.0.1:5432 (DATABASE_URL unset), database {db_name}"
    else:
        server = None
        note = "SQLite (no PostgreSQL: " + ("DATABASE_URL is SQLite)" if given else "none found)")
    if server:
        database_url = _with_path(server, f"/{db_name}")
        admin_url = _with_path(server, "/postgres")
        database = "postgresql"
    else:
        WORK.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{WORK / 'bench.sqlite3'}"
        admin_url = None
        database = "sqlite"

    redis_db = os.environ.get("MONITOR_BENCH_REDIS_DB", "14")
    given = os.environ.get("CELERY_BROKER_URL", "").strip()
    if given.startswith(("redis://", "rediss://")):
        broker_url = _with_path(given, f"/{redis_db}")
        broker, broker_note = "redis", f"Redis server from CELERY_BROKER_URL, db {redis_db}"
    elif given.startswith("amqp://"):
        # RabbitMQ: the bench's queues live on the given virtual host; it purges only them
        broker_url, broker = given, "rabbitmq"
        broker_note = "RabbitMQ server from CELERY_BROKER_URL"
    elif not given and _reachable("127.0.0.1", 6379):
        broker_url = f"redis://127.0.0.1:6379/{redis_db}"
        broker = "redis"
        broker_note = f"Redis found on 127.0.0.1:6379 (CELERY_BROKER_URL unset), db {redis_db}"
    else:
        broker_url, broker = "filesystem://", "filesystem"
        broker_note = "filesystem transport under var/bench (no Redis)"
    return Target(
        database_url=database_url,
        database=database,
        database_note=note,
        broker_url=broker_url,
        broker=broker,
        broker_note=broker_note,
        admin_url=admin_url,
        db_name=db_name,
    )


def _admin(target: Target, statement: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(target.admin_url), autocommit=True) as conn:
        conn.execute(statement)


def _libpq(url: str) -> str:
    # psycopg takes postgresql:// URLs; Django's "postgres://" scheme is an alias
    return "postgresql://" + url.split("://", 1)[1]


def create_database(target: Target, name: str | None = None) -> None:
    name = name or target.db_name
    if target.database == "postgresql":
        _admin(target, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(target, f'CREATE DATABASE "{name}"')
    else:
        path = Path(target.database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def drop_database(target: Target, name: str | None = None) -> None:
    name = name or target.db_name
    if target.database == "postgresql":
        _admin(target, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        create_database(target)  # removes the file


def peer_database_url(target: Target) -> str | None:
    """A second throwaway PostgreSQL database for the peer, on the same server."""
    if target.database != "postgresql":
        return None
    return _with_path(target.database_url, f"/{target.db_name}_peer")


def apply(target: Target) -> dict[str, str]:
    """Set this process's environment for Django, and return it for child processes."""
    run_dir = WORK / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "DJANGO_SETTINGS_MODULE": "monitor_site.settings",
        "DATABASE_URL": target.database_url,
        "CELERY_BROKER_URL": target.broker_url,
        "MONITOR_VAR_DIR": str(run_dir),
        "MONITOR_BROKER_DIR": str(WORK / "broker"),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "SITE_URL": "http://127.0.0.1:8000",
        "PYTHONUNBUFFERED": "1",
    }
    values.setdefault("DJANGO_SECRET_KEY", os.environ.get("DJANGO_SECRET_KEY") or "bench-only-key")
    for key in ("ANYMAIL_ESP", "EMAIL_URL"):
        os.environ.pop(key, None)
    for key in [k for k in os.environ if k.startswith("ANYMAIL_")]:
        os.environ.pop(key)
    os.environ.update(values)
    return dict(os.environ)
