"""Addresses and headers shared by every outgoing message."""

from __future__ import annotations

from email.utils import formataddr
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from issues.models import Publication


def one_line(value: str) -> str:
    """A header-safe value: CR, LF and other control characters become spaces."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def from_address(publication: Publication | None) -> str:
    """The publication as sender (`The Monitor <monitor@…>`), else DEFAULT_FROM_EMAIL."""
    if publication is None or not publication.sender_email:
        return settings.DEFAULT_FROM_EMAIL
    return formataddr(
        (one_line(publication.sender_name or publication.name), publication.sender_email)
    )


def reply_to(publication: Publication | None) -> list[str]:
    if publication is None:
        return []
    address = publication.reply_to or publication.contact_email
    return [address] if address else []
