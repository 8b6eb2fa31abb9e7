"""Settings come from the environment; a malformed value stops start-up naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT

PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.EMAIL_BACKEND)"
)


def run_settings(tmp_path, probe: str = PROBE, **env: str) -> subprocess.CompletedProcess:
    base = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "monitor_site.settings",
        "MONITOR_VAR_DIR": str(tmp_path),
    }
    base.update(env)
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=base, capture_output=True, text=True
    )


def test_defaults_in_debug_use_sqlite_filesystem_broker_and_outbox(tmp_path):
    result = run_settings(tmp_path, DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "django.db.backends.sqlite3",
        "filesystem://",
        "monitor_site.outbox.OutboxBackend",
    ]
    # the generated secret key is kept for the next start
    assert (tmp_path / "secret_key").read_text().strip()


def test_services_come_from_the_environment(tmp_path):
    result = run_settings(
        tmp_path,
        DJANGO_SECRET_KEY="k" * 50,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/monitor",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        EMAIL_URL="smtp://127.0.0.1:2525",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "django.db.backends.postgresql",
        "redis://127.0.0.1:6379/0",
        "django.core.mail.backends.smtp.EmailBackend",
    ]


CACHE_PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "c = s.CACHES['default']; print(c['BACKEND'], c['LOCATION'], c.get('KEY_PREFIX', '-'))"
)


@pytest.mark.parametrize(
    ("env", "cache"),
    [
        ({}, "django.core.cache.backends.db.DatabaseCache monitor_cache -"),
        (
            {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/4"},
            "django.core.cache.backends.redis.RedisCache redis://127.0.0.1:6379/4 monitor",
        ),
        (
            {
                "CELERY_BROKER_URL": "redis://127.0.0.1:6379/4",
                "MONITOR_CACHE_URL": "redis://cache.internal:6379/0",
            },
            "django.core.cache.backends.redis.RedisCache redis://cache.internal:6379/0 monitor",
        ),
    ],
)
def test_the_rate_limit_cache_is_redis_whenever_there_is_one(tmp_path, env, cache):
    result = run_settings(tmp_path, CACHE_PROBE, DJANGO_DEBUG="1", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == cache


def test_anymail_esp_selects_its_backend(tmp_path):
    result = run_settings(tmp_path, DJANGO_SECRET_KEY="k" * 50, ANYMAIL_ESP="postmark")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "anymail.backends.postmark.EmailBackend"


def test_the_time_zone_comes_from_the_environment(tmp_path):
    probe = (
        "import django; django.setup(); from django.conf import settings as s; print(s.TIME_ZONE)"
    )
    assert run_settings(tmp_path, probe, DJANGO_DEBUG="1").stdout.strip() == "America/New_York"
    chosen = run_settings(tmp_path, probe, DJANGO_DEBUG="1", DJANGO_TIME_ZONE="Europe/Berlin")
    assert chosen.stdout.strip() == "Europe/Berlin", chosen.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"DJANGO_DEBUG": "1", "CELERY_BROKER_URL": "127.0.0.1:6379"}, "CELERY_BROKER_URL"),
        ({"DJANGO_DEBUG": "1", "SITE_URL": "example.org"}, "SITE_URL"),
        ({"DJANGO_DEBUG": "1", "EMAIL_URL": "http://mail"}, "EMAIL_URL"),
        ({"DJANGO_DEBUG": "1", "ANYMAIL_WEBHOOK_SECRET": "nocolon"}, "ANYMAIL_WEBHOOK_SECRET"),
        ({"DJANGO_DEBUG": "1", "DJANGO_HSTS_SECONDS": "year"}, None),
        ({"DJANGO_DEBUG": "1", "MONITOR_DELIVERY_STALL_SECONDS": "5m"}, "STALL_SECONDS"),
        ({"DJANGO_DEBUG": "1", "MONITOR_DELIVERY_STALL_SECONDS": "0"}, "STALL_SECONDS"),
        (
            {"DJANGO_DEBUG": "1", "MONITOR_TRUSTED_PROXY_COUNT": "one"},
            "MONITOR_TRUSTED_PROXY_COUNT",
        ),
        ({"DJANGO_DEBUG": "1", "MONITOR_TRUSTED_PROXY_COUNT": "-1"}, "MONITOR_TRUSTED_PROXY_COUNT"),
        ({"DJANGO_DEBUG": "1", "MONITOR_SEARCH_RATE": "30 a minute"}, "MONITOR_SEARCH_RATE"),
        ({"DJANGO_DEBUG": "1", "MONITOR_SEARCH_RATE": "0/m"}, "MONITOR_SEARCH_RATE"),
        ({"DJANGO_DEBUG": "1", "MONITOR_CACHE_URL": "memcached://x"}, "MONITOR_CACHE_URL"),
        ({"DJANGO_DEBUG": "1", "MONITOR_BOUNCE_DOMAIN": "bounces_here"}, "MONITOR_BOUNCE_DOMAIN"),
        (
            {"DJANGO_DEBUG": "1", "MONITOR_BOUNCE_IMAP_URL": "pop3://mail.example.org"},
            "MONITOR_BOUNCE_IMAP_URL",
        ),
        ({"DJANGO_DEBUG": "1", "MONITOR_BOUNCE_POLL_SECONDS": "1"}, "MONITOR_BOUNCE_POLL_SECONDS"),
        ({"DJANGO_DEBUG": "1", "DJANGO_TIME_ZONE": "Washington"}, "DJANGO_TIME_ZONE"),
        ({"DJANGO_DEBUG": "1", "DJANGO_TIME_ZONE": "../etc/passwd"}, "DJANGO_TIME_ZONE"),
    ],
)
def test_malformed_value_stops_start_up_naming_the_variable(tmp_path, env, named):
    result = run_settings(tmp_path, **env)
    if named is None:  # only read in production; debug ignores it
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr.strip().splitlines()[-1]


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "monitor_site.settings",
        "MONITOR_VAR_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": "x7#kP2!vQ9@mZ4$wR8^tY6&uE3*iO1(pA5)sD0-fG7+hJ2-Lq8Wn3Bv",
        "DJANGO_ALLOWED_HOSTS": "monitor.example.org",
        "SITE_URL": "https://monitor.example.org",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_beat_reads_the_bounce_mailbox_only_when_there_is_one(tmp_path):
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CELERY_BEAT_SCHEDULE.get('bounces-poll'), s.BOUNCE_DOMAIN)"
    )
    without = run_settings(tmp_path, probe, DJANGO_DEBUG="1")
    assert without.stdout.split() == ["None"]
    with_url = run_settings(
        tmp_path,
        probe,
        DJANGO_DEBUG="1",
        MONITOR_BOUNCE_IMAP_URL="imaps://u:p@imap.example.org/INBOX",
        MONITOR_BOUNCE_POLL_SECONDS="120",
        MONITOR_BOUNCE_DOMAIN="Bounces.Example.org.",
    )
    assert with_url.returncode == 0, with_url.stderr
    assert with_url.stdout.strip() == (
        "{'task': 'delivery.tasks.bounces_poll', 'schedule': 120.0} bounces.example.org"
    )


PRIORITY_PROBE = (
    "import django; django.setup(); from monitor_site.celery import app; "
    "from delivery.dispatch import priorities; "
    "print(*(app.amqp.queues[q].queue_arguments for q in ('default', 'send')), *priorities())"
)


@pytest.mark.parametrize(
    "broker, printed",
    [
        # RabbitMQ serves the highest priority first, in queues declared to have them
        ("amqp://guest:guest@127.0.0.1:5672//", "{'x-max-priority': 9} {'x-max-priority': 9} 9 0"),
        # Redis keeps a list per priority step and serves 0 first
        ("redis://127.0.0.1:6379/0", "None None 0 6"),
    ],
)
def test_rows_due_again_outrank_new_rows_on_either_broker(tmp_path, broker, printed):
    result = run_settings(
        tmp_path, PRIORITY_PROBE, DJANGO_SECRET_KEY="k" * 50, CELERY_BROKER_URL=broker
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == printed
