from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from subscriptions.models import Subscriber, Subscription
from tests.helpers import Sink, free_port


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
