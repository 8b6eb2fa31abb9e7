"""What delivery holds about one reader (subscriptions/readerdata.py, erasure.py): the
delivery rows of the issues mailed to them and the ESP's events about those messages
or their address.

* Export: every delivery row with its events, and the events that matched no delivery,
  newest issue first. A clicked link of this site that acts for the reader (an
  unsubscribe or preferences link) is given without its token.
* Erasure: the events are added to their issues' tallies (delivery/tallies.py) and
  deleted; each delivery row stays, so that the issue's counts do not change, with the
  placeholder address ERASED_EMAIL, no subscriber, and the address taken out of the
  mail server's last answer. With the outbox backend (no mail settings), the messages
  to the address are deleted from it once the erasure is committed.
Deliveries are found through the subscriber rows (indexed), events through those
deliveries and the address (indexed): a handful of queries per reader.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from delivery.models import ERASED_EMAIL, Delivery, DeliveryEvent
from delivery.tallies import events_fold
from monitor_site import outbox
from subscriptions.readerdata import Reader

# The site's links that act for a reader: their tokens stay out of the export.
_READER_LINKS = (
    "subscriptions:unsubscribe",
    "subscriptions:preferences",
    "subscriptions:confirm",
    "subscriptions:invitation",
    "subscriptions:join_confirm",
)


def _deliveries(reader: Reader):
    return Delivery.objects.filter(subscriber_id__in=reader.subscriber_ids)


def _events(reader: Reader, delivery_ids: list[int]):
    about = Q(delivery_id__in=delivery_ids)
    if reader.email:
        about |= Q(email=reader.email)
    return DeliveryEvent.objects.filter(about)


def _shown_url(url: str) -> str:
    for name in _READER_LINKS:
        prefix = settings.SITE_URL + reverse(name, args=["token"]).removesuffix("token/")
        if url.startswith(prefix):
            return prefix + "…"
    return url


def _event(e: DeliveryEvent) -> dict[str, Any]:
    return {
        "kind": e.kind,
        "machine": e.machine,
        "occurred_at": e.occurred_at,
        "received_at": e.received_at,
        "esp": e.esp,
        "email": e.email,
        "reject_reason": e.reject_reason,
        "description": e.description,
        "url": _shown_url(e.url),
    }


def reader_deliveries_data(reader: Reader) -> dict[str, list[dict[str, Any]]]:
    deliveries = list(
        _deliveries(reader)
        .select_related("issue__publication", "issue__volume")
        .order_by("-created_at", "-pk")
    )
    events: dict[int | None, list[dict[str, Any]]] = {}
    for e in _events(reader, [d.pk for d in deliveries]).order_by("occurred_at", "pk"):
        events.setdefault(e.delivery_id, []).append(_event(e))
    return {
        "deliveries": [
            {
                "issue": {
                    "publication": d.issue.publication.slug,
                    "volume": d.issue.volume.number,
                    "number": d.issue.number,
                    "title": d.issue.display_title,
                },
                "email": d.email,
                "status": d.status,
                "attempts": d.attempts,
                "created_at": d.created_at,
                "sent_at": d.sent_at,
                "last_error": d.last_error,
                "esp_message_id": d.esp_message_id,
                "events": events.pop(d.pk, []),
            }
            for d in deliveries
        ],
        # about the address, but matching none of its deliveries (or another's)
        "events_without_delivery": [e for group in events.values() for e in group],
    }


def reader_deliveries_erase(reader: Reader) -> dict[str, int]:
    """Call inside the erasure's transaction, before the subscribers are deleted."""
    rows = list(_deliveries(reader).only("pk", "email", "last_error"))
    ids = [d.pk for d in rows]
    folded = events_fold(list(_events(reader, ids).values_list("pk", flat=True)))
    addresses = {reader.email, *(d.email for d in rows)} - {""}
    pattern = re.compile("|".join(map(re.escape, addresses)), re.IGNORECASE) if addresses else None
    for delivery in rows:
        delivery.email = ERASED_EMAIL
        if pattern is not None:
            delivery.last_error = pattern.sub(ERASED_EMAIL, delivery.last_error)
        delivery.subscriber_id = None
        delivery.subscription_id = None
    Delivery.objects.bulk_update(
        rows, ["email", "last_error", "subscriber", "subscription"], batch_size=500
    )
    if outbox.is_active() and reader.email:
        transaction.on_commit(lambda: outbox.messages_forget(reader.email))
    return {"deliveries made anonymous": len(rows), "ESP events": folded}
