from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from issues.models import Article, Issue, Publication, Volume
from subscriptions.models import Subscriber, Subscription


def member_of(group: str, username: str, *, email: str | None = None) -> User:
    """A staff user in one of the groups the editorial migration creates."""
    user = User.objects.create_user(
        username, f"{username}@example.org" if email is None else email, "pw", is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    return user


def url(name: str, issue: Issue) -> str:
    """An Issue admin URL added by the sending admin (`preview`, `send`, …)."""
    return reverse(f"admin:issues_issue_{name}", args=[issue.pk])


def status_of(issue: Issue) -> str:
    return Issue.objects.values_list("status", flat=True).get(pk=issue.pk)


BODY = """The leadership seems **confused** and worried by the new policy toward
its union partner (Itar-Tass, December 15-16, 1999).

Lukashenka has also been hoping to use the Union as a vehicle. See
[the archive](https://example.org/monitor/) for more.

- one point
- another point
"""


@pytest.fixture
def publication(db) -> Publication:
    return Publication.objects.create(
        name="The Monitor",
        slug="monitor",
        sender_name="The Monitor",
        sender_email="monitor@example.org",
        reply_to="pubs@example.org",
        publisher_name="The Jamestown Foundation",
        contact_email="pubs@example.org",
        contact_fax="301-562-8021",
        contact_postal_address="4516 43rd Street NW, Washington DC 20016",
        notice="Unauthorized reproduction or redistribution is prohibited.",
        list_id_domain="example.org",
    )


@pytest.fixture
def make_issue(publication) -> Callable[..., Issue]:
    def make(*, number: int = 11, status: str = Issue.Status.APPROVED, articles: int = 2) -> Issue:
        volume, _ = Volume.objects.get_or_create(publication=publication, number=6)
        issue = Issue.objects.create(
            publication=publication, volume=volume, number=number, status=status
        )
        for position in range(articles):
            Article.objects.create(
                issue=issue, position=position, headline=f"Headline {position + 1}", body=BODY
            )
        return issue

    return make


@pytest.fixture
def issue(make_issue) -> Issue:
    return make_issue()


@pytest.fixture
def make_subscribers(publication) -> Callable[..., list[Subscription]]:
    def make(
        count: int,
        *,
        prefix: str = "reader",
        status: str = Subscription.Status.ACTIVE,
        format: str = Subscription.Format.HTML,
    ) -> list[Subscription]:
        subscribers = Subscriber.objects.bulk_create(
            Subscriber(email=f"{prefix}{n}@example.org", name=f"Reader {n}") for n in range(count)
        )
        now = timezone.now()
        Subscription.objects.bulk_create(
            Subscription(
                subscriber=s,
                publication=publication,
                status=status,
                format=format,
                confirmed_at=now,
            )
            for s in subscribers
        )
        return list(
            Subscription.objects.filter(subscriber__email__startswith=prefix).select_related(
                "subscriber"
            )
        )

    return make


@dataclass
class Sink:
    """What a real SMTP server received, and how it should answer."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply
    reject_data: dict[str, str] = field(default_factory=dict)  # ... at the end of DATA
    hang_up_at: str = ""  # an address whose message content ends the connection
    delay: float = 0.0
    pipelining: bool = False  # advertise RFC 2920 PIPELINING
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        if self.hang_up_at in envelope.rcpt_tos:
            server.transport.close()
            return "421 4.3.2 Shutting down"
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.reject_data:
                return self.reject_data[rcpt]
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt, envelope.original_content))
        return "250 Message accepted"

    def recipients(self) -> list[str]:
        with self.lock:
            return [rcpt for rcpt, _ in self.messages]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_sink):
    sink, port = smtp_sink
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 10
    return sink
