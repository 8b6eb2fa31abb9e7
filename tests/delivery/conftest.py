from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from issues.models import Article, Issue, Publication, Volume
from subscriptions.models import Subscriber, Subscription
from tests.factories import BODY
from tests.helpers import Sink, free_port


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
