"""The header rules every outgoing message keeps, and the builder of a transactional
message from its templates. Which messages there are is each app's own business
(`subscriptions.emails`)."""

from __future__ import annotations

from email.utils import make_msgid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

if TYPE_CHECKING:
    from issues.models import Publication


def one_line(value: str) -> str:
    """A header-safe value: CR, LF and other control characters become spaces."""
    if value.isprintable():
        return " ".join(value.split())
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def build_message(
    kind: str,
    *,
    to: str,
    context: dict[str, Any],
    publication: Publication | None = None,
    reply_to_addresses: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    """One transactional message, multipart text + HTML, from the templates
    `emails/<kind>.subject.txt`, `.txt` and `.html`; the publication is the sender.

    Every header value goes through `one_line`, so reader-supplied text (names,
    subjects) can never add a header. The Message-ID is on the site's own domain, as
    an issue's is, not on whatever name the worker's host has (often `localhost`,
    which spam filters score)."""
    context = {"site_url": settings.SITE_URL, "publication": publication, **context}
    subject = one_line(render_to_string(f"emails/{kind}.subject.txt", context))
    text = render_to_string(f"emails/{kind}.txt", context)
    html = render_to_string(f"emails/{kind}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=publication.from_address if publication else settings.DEFAULT_FROM_EMAIL,
        to=[one_line(to)],
        reply_to=[
            one_line(a)
            for a in (reply_to_addresses or (publication.reply_to_addresses if publication else []))
        ],
        headers={
            "Message-ID": make_msgid(domain=urlsplit(settings.SITE_URL).hostname),
            **{one_line(k): one_line(v) for k, v in (headers or {}).items()},
        },
    )
    message.attach_alternative(html, "text/html")
    return message
