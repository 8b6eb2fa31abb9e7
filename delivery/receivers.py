"""Receivers of django-anymail's signals and of the readers' data signals of
subscriptions (connected in DeliveryConfig.ready)."""

from __future__ import annotations

from typing import Any

from anymail.signals import AnymailTrackingEvent

from delivery import feedback, readers
from subscriptions.readerdata import Reader


def tracking_event_received(
    sender: type, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any
) -> None:
    """One ESP tracking event: stored against its delivery, suppressions applied.

    Exceptions propagate on purpose: the request then answers 5xx (503 for the database,
    monitor_site.unavailable) and the ESP sends the event again, which the stored key
    makes safe."""
    feedback.event_record(esp=esp_name, event=event)


def reader_data_collected(sender: type, reader: Reader, **kwargs: Any) -> dict[str, list]:
    """A reader's deliveries and ESP events, for the export of their data."""
    return readers.reader_deliveries_data(reader)


def reader_erasing(sender: type, reader: Reader, **kwargs: Any) -> dict[str, int]:
    """A reader's deliveries made anonymous and their events deleted, in the erasure's
    transaction; an exception rolls the whole erasure back."""
    return readers.reader_deliveries_erase(reader)
