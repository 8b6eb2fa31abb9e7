from __future__ import annotations

import pytest
from django.core.cache import cache

from monitor_site.tasks import HEARTBEAT_KEY, heartbeat
from tests.conftest import wait_for


@pytest.mark.worker
def test_task_round_trip_through_a_real_worker_on_the_configured_broker(celery_worker_process):
    cache.delete(HEARTBEAT_KEY)
    celery_worker_process(concurrency=1)

    heartbeat.delay()

    seen = wait_for(lambda: cache.get(HEARTBEAT_KEY), timeout=60)
    assert seen
