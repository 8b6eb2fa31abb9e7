"""A publication's rate limit (messages per second), shared by every worker process
through one row per publication: a sender reserves its slots before it sends."""

from __future__ import annotations

import time

from django.db import transaction

from delivery.models import RateSlot


def reserve(publication_id: int, rate: int, count: int) -> float:
    """Reserve `count` sending slots of a rate-limited publication, shared by every
    worker process; returns when (epoch seconds) the first may go."""
    with transaction.atomic():
        slot, _ = RateSlot.objects.select_for_update().get_or_create(publication_id=publication_id)
        start = max(time.time(), slot.next_at)
        slot.next_at = start + count / rate
        slot.save(update_fields=["next_at"])
    return start
