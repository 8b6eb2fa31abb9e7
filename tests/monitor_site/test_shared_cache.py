"""The default cache on the broker's Redis keeps to its own keys."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from monitor_site.celery import app as celery_app
from tests.helpers import cache_is_redis, clear_default_cache

pytestmark = pytest.mark.skipif(not cache_is_redis(), reason="the cache is not on Redis")


def test_clearing_the_cache_keeps_the_brokers_queues_and_bindings():
    with celery_app.connection_for_write() as conn:
        queue = conn.SimpleQueue("monitor-cache-probe")
        try:
            queue.put({"still": "here"})
            cache.set("probe", 1)
            clear_default_cache()
            assert cache.get("probe") is None
            message = queue.get(timeout=5)
            message.ack()
            assert message.payload == {"still": "here"}
        finally:
            queue.close()
            conn.default_channel.queue_delete("monitor-cache-probe")
