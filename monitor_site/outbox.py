"""An email backend that keeps every message as one .eml file under var/outbox/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from email.utils import getaddresses
from pathlib import Path

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.mail import EmailMessage as DjangoEmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.http import HttpRequest
from django.utils import timezone

from delivery.permissions import READERS_LINKS

NAME = re.compile(r"\d{8}T\d{12}-[0-9a-f]{12}\.eml")


class OutboxBackend(BaseEmailBackend):
    """Writes each message atomically (temporary file, then rename), so a reader of the
    folder never sees half a message."""

    def __init__(self, *, outbox_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.outbox_dir = Path(outbox_dir or settings.OUTBOX_DIR)

    def send_messages(self, email_messages: Sequence[DjangoEmailMessage]) -> int:
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


def read_headers(path: Path) -> dict[str, str]:
    """From, To, Subject and Date of a stored message, for listing."""
    with path.open("rb") as f:
        message = BytesParser(policy=default).parse(f, headersonly=True)
    return {key: str(message.get(key, "")) for key in ("From", "To", "Subject", "Date")}


def read_message(name: str) -> EmailMessage | None:
    """One stored message by file name; None for a name that is not one of ours."""
    folder = Path(settings.OUTBOX_DIR)
    if not NAME.fullmatch(name) or not (folder / name).is_file():
        return None
    with (folder / name).open("rb") as f:
        return BytesParser(policy=default).parse(f)


def messages_forget(address: str) -> int:
    """Delete the stored messages to `address`, or whose replies go to it (a contact
    message passed on to staff), any case; returns how many."""
    folder = Path(settings.OUTBOX_DIR)
    if not folder.is_dir():
        return 0
    address = address.strip().lower()
    forgotten = 0
    for path in folder.glob("*.eml"):
        with path.open("rb") as f:
            message = BytesParser(policy=default).parse(f, headersonly=True)
        fields = [
            str(value) for key in ("To", "Cc", "Reply-To") for value in message.get_all(key, [])
        ]
        if any(addr.lower() == address for _, addr in getaddresses(fields)):
            path.unlink(missing_ok=True)
            forgotten += 1
    return forgotten


def is_active() -> bool:
    return settings.EMAIL_BACKEND == "monitor_site.outbox.OutboxBackend"


def may_read(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether `user` may read the outbox: its messages carry readers' signed links, which
    act for those readers, so staff need the permission that shows them."""
    return user.is_staff and user.has_perm(READERS_LINKS)


def context(request: HttpRequest) -> dict[str, object]:
    """Template context: whether the admin should offer the outbox, asked only by the
    templates that show the link (a public page never loads the user for it)."""
    return {"outbox_offered": lambda: is_active() and may_read(request.user)}
