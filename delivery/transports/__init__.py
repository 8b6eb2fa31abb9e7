"""Ways to hand finished messages to the mail system, one chunk at a time: plain SMTP
(`smtp`, with `pipelining`), an ESP through django-anymail (`esp`), or any Django email
backend (`backend`). Each reports every recipient's outcome (`base.Outcome`)."""

from __future__ import annotations

from django.conf import settings

from delivery.rendering import RenderedIssue
from delivery.transports.backend import BackendTransport
from delivery.transports.base import Batch, Outcome
from delivery.transports.esp import ESP_BATCH_LIMIT, ESP_BATCH_LIMITS, MERGE_TAGS, AnymailTransport
from delivery.transports.smtp import SmtpTransport

__all__ = [
    "AnymailTransport",
    "BackendTransport",
    "Batch",
    "Outcome",
    "SmtpTransport",
    "names_needed",
    "transport",
]


def _esp() -> str | None:
    """The anymail ESP the configured EMAIL_BACKEND sends through, if any."""
    backend = settings.EMAIL_BACKEND
    return backend.split(".")[2] if backend.startswith("anymail.backends.") else None


def names_needed(rendered: RenderedIssue) -> bool:
    """Whether the configured transport needs recipients' names for this issue: an ESP
    only where the templates use them; SMTP and Django backends write them in To."""
    return _esp() is None or "name" in rendered.fields


def rows_to_fill_lanes() -> int:
    """How many messages a chunk needs so that every call lane of the configured ESP
    sends two whole batches (0 where a lane takes a message at a time): the calls start
    a build apart (`esp.Starts`), and only the chunk's last ones wait with nothing
    left to build."""
    esp = _esp()
    if esp not in MERGE_TAGS:
        return 0
    return 2 * settings.DELIVERY_ESP_CALLS * ESP_BATCH_LIMITS.get(esp, ESP_BATCH_LIMIT)


def transport():
    """The transport for the configured EMAIL_BACKEND."""
    if settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend":
        return SmtpTransport()
    esp = _esp()
    return BackendTransport() if esp is None else AnymailTransport(esp)
