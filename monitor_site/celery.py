"""The Celery app: `celery -A monitor_site worker` and `celery -A monitor_site beat`."""

from __future__ import annotations

import gc
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monitor_site.settings")

app = Celery("monitor_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task: object = None, **kwargs: object) -> None:
    """Between tasks, drop a connection that is broken or past CONN_MAX_AGE (not for a
    task run in the caller's process, whose transaction it would end)."""
    from django.db import close_old_connections

    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()


@worker_init.connect
def _warm_up(**kwargs: object) -> None:
    """Build once, before the pool forks, what the first chunk of every worker process
    would otherwise build for itself (docs/benchmarks.md has the figures): the URL
    patterns (for an issue's links; they import the admin and anymail's webhooks), the
    email templates and the mail backend's modules."""
    from django.template.loader import get_template
    from django.urls import reverse

    from delivery.transports import transport

    reverse("healthz")
    for name in ("emails/issue.html", "emails/issue.txt"):
        get_template(name)
    transport()


@worker_process_init.connect
def _settle_collector(**kwargs: object) -> None:
    """A worker process starts with Django and the app already built, objects that live
    as long as it does, then each chunk makes and drops tens of thousands more.
    Python's cycle collector would walk the inherited ones in every full collection and
    run a young collection every 700 new objects, a measurable share of every message
    (docs/benchmarks.md). Keep the inherited objects out of its walks and let it run
    every 10,000 new objects."""
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
