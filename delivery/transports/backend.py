"""Any Django email backend (the outbox, the console, tests): one message per recipient
through one opened connection."""

from __future__ import annotations

from email.utils import format_datetime

from django.core.mail import get_connection
from django.utils import timezone

from delivery.rendering import RenderedIssue
from delivery.transports.base import Batch, Outcome, Transport
from monitor_site.retry import failure


class BackendTransport(Transport):
    def __init__(self) -> None:
        self.backend = get_connection()

    def __enter__(self) -> BackendTransport:
        self.backend.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.backend.close()

    def send(self, rendered: RenderedIssue, batch: Batch) -> Outcome:
        outcome = Outcome()
        date = format_datetime(timezone.now())
        for delivery_id, recipient in batch:
            try:
                self.backend.send_messages([rendered.email_message(recipient, date=date)])
                outcome.sent[delivery_id] = ""
            except Exception as exc:  # any backend's error: tried again later
                outcome.retry[delivery_id] = failure(exc).reason
        return outcome
