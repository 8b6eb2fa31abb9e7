from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_KEY = "worker-heartbeat"


@shared_task
def heartbeat() -> None:
    """Record that a worker is taking tasks; /healthz shows when it last did."""
    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), timeout=None)
