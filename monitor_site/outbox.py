"""An email backend that keeps every message as one .eml file under var/outbox/."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone


class OutboxBackend(BaseEmailBackend):
    """Writes each message atomically (temporary file, then rename), so a reader of the
    folder never sees half a message."""

    def __init__(self, *, outbox_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.outbox_dir = Path(outbox_dir or settings.OUTBOX_DIR)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            data = message.message().as_bytes()
            name = f"{timezone.now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}.eml"
            tmp = self.outbox_dir / f".{name}.tmp"
            tmp.write_bytes(data)
            tmp.rename(self.outbox_dir / name)
            sent += 1
        return sent


def outbox_messages(limit: int = 100) -> list[Path]:
    """The newest messages in the outbox, newest first."""
    folder = Path(settings.OUTBOX_DIR)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.eml"), reverse=True)[:limit]
