from __future__ import annotations

import gc

import pytest
from django.core.cache import cache

from monitor_site.tasks import HEARTBEAT_KEY, heartbeat
from tests.helpers import wait_for


@pytest.mark.worker
def test_task_round_trip_through_a_real_worker_on_the_configured_broker(celery_worker_process):
    cache.delete(HEARTBEAT_KEY)
    celery_worker_process(concurrency=1)

    heartbeat.delay()

    seen = wait_for(lambda: cache.get(HEARTBEAT_KEY), timeout=60)
    assert seen


def test_a_new_worker_process_keeps_what_it_inherited_out_of_garbage_collection():
    from celery.signals import worker_process_init

    threshold = gc.get_threshold()
    try:
        worker_process_init.send(sender=None)
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (10_000, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
