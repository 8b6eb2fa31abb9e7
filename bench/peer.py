"""The peer: django-newsletter, from PyPI, sending the same issue to the same number of
subscribers through the same SMTP sink, its own documented way.

It gets a throwaway virtualenv under var/bench/peer-venv (its own Django and its
thumbnail dependency) and a generated minimal project; a Submission of a Message made
of the seed issue's articles is prepared for N subscriptions, then timed through
`manage.py submit_newsletter`, the command its documentation says cron runs. Its
throttling settings (NEWSLETTER_EMAIL_DELAY, NEWSLETTER_BATCH_DELAY) are left unset,
so it sends as fast as it can.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench import env as bench_env
from bench import procs
from bench.smtpsink import count as sink_count

VENV = bench_env.WORK / "peer-venv"
PROJECT = bench_env.WORK / "peer-project"
REQUIREMENTS = ["django-newsletter>=1.2,<1.3", "sorl-thumbnail>=12.10", "psycopg[binary]>=3.2"]

SETTINGS = """
import os
BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "peer-bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.sites", "sorl.thumbnail", "newsletter",
]
SITE_ID = 1
ROOT_URLCONF = "urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates",
              "APP_DIRS": True, "OPTIONS": {"context_processors": []}}]
DATABASES = {"default": %(database)s}
USE_TZ = True
STATIC_URL = "/static/"
MEDIA_URL = "/media/"
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["PEER_SMTP_PORT"])
NEWSLETTER_THUMBNAIL = "sorl-thumbnail"
NEWSLETTER_USE_HTTPS = True
NEWSLETTER_CONFIRM_EMAIL = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "loggers": {"newsletter": {"level": "WARNING"}}}
"""

URLS = """
from django.urls import include, path
urlpatterns = [path("newsletter/", include("newsletter.urls"))]
"""

MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

SETUP = '''
"""Make the newsletter, the message (the seed issue's articles) and N subscriptions;
`prepare` makes a new Submission ready for submit_newsletter."""
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
import django
django.setup()
from datetime import timedelta
from django.contrib.sites.models import Site
from django.utils import timezone
from newsletter.models import Article, Message, Newsletter, Submission, Subscription

command = sys.argv[1]
if command == "content":
    content = json.load(open(sys.argv[2]))
    n = int(sys.argv[3])
    site = Site.objects.get_current()
    newsletter = Newsletter.objects.create(
        title=content["publication"], slug="monitor", email=content["sender_email"],
        sender=content["sender_name"],
    )
    newsletter.site.set([site])
    message = Message.objects.create(title=content["title"], slug="issue", newsletter=newsletter)
    for position, article in enumerate(content["articles"]):
        Article.objects.create(
            post=message, sortorder=(position + 1) * 10, title=article["headline"],
            text=article["html"],
        )
    now = timezone.now()
    Subscription.objects.bulk_create(
        Subscription(
            newsletter=newsletter, email_field=f"reader{i}@example.org",
            name_field=f"Reader {i}" if i % 2 else "", subscribed=True, subscribe_date=now,
        )
        for i in range(n)
    )
    print(Subscription.objects.filter(subscribed=True).count())
elif command == "prepare":
    message = Message.objects.get(slug="issue")
    submission = Submission.from_message(message)
    submission.prepared = True
    submission.publish_date = timezone.now() - timedelta(minutes=1)
    submission.save()
    print(submission.subscriptions.count())
'''


def _python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> str:
    """The peer's virtualenv, made once and kept (var/ is not in the repository)."""
    stamp = VENV / ".bench-installed"
    wanted = json.dumps(REQUIREMENTS)
    if not stamp.exists() or stamp.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [
                str(_python()),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *REQUIREMENTS,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stamp.write_text(wanted)
    out = subprocess.run(
        [str(_python()), "-m", "pip", "show", "django-newsletter", "django"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    versions = [
        line.split(":", 1)[1].strip()
        for line in out.splitlines()
        if line.startswith(("Name", "Version"))
    ]
    return ", ".join(f"{versions[i]} {versions[i + 1]}" for i in range(0, len(versions), 2))


def _database(target: bench_env.Target) -> str:
    url = bench_env.peer_database_url(target)
    if url is None:
        return repr({"ENGINE": "django.db.backends.sqlite3", "NAME": str(PROJECT / "peer.sqlite3")})
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return repr(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "postgres",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
        }
    )


def _content(ctx) -> dict:
    issue = ctx.issue
    from delivery.rendering import RenderedIssue

    rendered = RenderedIssue(issue)
    return {
        "publication": issue.publication.name,
        "sender_email": issue.publication.sender_email,
        "sender_name": issue.publication.sender_name,
        "title": rendered.subject_line,
        "articles": [
            {"headline": a.headline, "html": a.body_html}
            for a in issue.articles.order_by("position")
        ],
    }


def _ours(ctx, n: int) -> dict:
    smtp = ctx.results.get("smtp", {})
    if f"n{n}" in smtp:
        return {"messages_per_s": smtp[f"n{n}"]["messages_per_s"], "source": "smtp bench, same run"}
    from bench import benches

    saved = ctx.sizes
    ctx.sizes = (n,)
    try:
        result = benches.smtp(ctx)
    finally:
        ctx.sizes = saved
    return {"messages_per_s": result["messages_per_s"], "source": "measured for the peer"}


def peer(ctx) -> dict:
    n = ctx.peer_n
    versions = ensure_venv()
    target = ctx.target
    if PROJECT.exists():
        import shutil

        shutil.rmtree(PROJECT)
    PROJECT.mkdir(parents=True)
    (PROJECT / "settings.py").write_text(SETTINGS % {"database": _database(target)})
    (PROJECT / "urls.py").write_text(URLS)
    (PROJECT / "manage.py").write_text(textwrap.dedent(MANAGE))
    (PROJECT / "bench_setup.py").write_text(SETUP)
    (PROJECT / "content.json").write_text(json.dumps(_content(ctx)))
    peer_db = bench_env.peer_database_url(target)
    if peer_db:
        bench_env.create_database(target, name=peer_db.rsplit("/", 1)[1])
    sink, port = procs.smtp_sink(ctx.env)
    env = {
        "PATH": "/usr/bin:/bin",
        "PEER_SMTP_PORT": str(port),
        "PYTHONWARNINGS": "ignore",
        "PYTHONUNBUFFERED": "1",
    }

    def run(*args: str, **kwargs) -> str:
        return subprocess.run(
            [str(_python()), *args],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            **kwargs,
        ).stdout

    try:
        run("manage.py", "migrate", "--noinput", "-v0")
        made = int(run("bench_setup.py", "content", "content.json", str(n)).split()[-1])
        assert made == n, (made, n)
        rates = []
        for _ in range(ctx.runs):
            prepared = int(run("bench_setup.py", "prepare").split()[-1])
            assert prepared == n, (prepared, n)
            before = sink_count(port)[0]
            start = time.perf_counter()
            run("manage.py", "submit_newsletter", "-v0", timeout=1800)
            elapsed = time.perf_counter() - start
            arrived = sink_count(port)[0] - before
            if arrived != n:
                raise RuntimeError(f"django-newsletter sent {arrived} of {n}")
            rates.append(n / elapsed)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{exc.cmd}: {exc.stderr[-2000:]}") from None
    finally:
        sink.stop()
        if peer_db:
            bench_env.drop_database(target, name=peer_db.rsplit("/", 1)[1])
    theirs = statistics.median(rates)
    ours = _ours(ctx, n)
    from bench.benches import spread

    return {
        "bench": "peer",
        "peer": f"django-newsletter ({versions})",
        "n": n,
        "runs": len(rates),
        "theirs_messages_per_s": round(theirs, 1),
        "theirs_messages_per_s_runs": spread(rates),
        "theirs_how": "manage.py submit_newsletter, one process, SMTP to bench.smtpsink",
        "ours_messages_per_s": ours["messages_per_s"],
        "ours_how": ours["source"] + ": celery worker --concurrency=2, SMTP to bench.smtpsink",
        "ratio": round(ours["messages_per_s"] / theirs, 2),
    }
