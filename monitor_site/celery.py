"""The Celery app: `celery -A monitor_site worker` and `celery -A monitor_site beat`."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

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
