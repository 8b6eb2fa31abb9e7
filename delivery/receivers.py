"""Receivers of django-anymail's signals (connected in DeliveryConfig.ready)."""

from __future__ import annotations

from typing import Any

from anymail.signals import AnymailTrackingEvent

from delivery import feedback


def tracking_event_received(
    sender: type, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any
) -> None:
    """One ESP tracking event: stored against its delivery, suppressions applied.

    Exceptions propagate on purpose: anymail's view then answers 500 and the ESP sends
    the event again, which the stored key makes safe."""
    feedback.event_record(esp=esp_name, event=event)
