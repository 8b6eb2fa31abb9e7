"""Fixtures for the real-browser journeys: Debian's Chromium through pytest-playwright,
the live server, a real SMTP server and a real Celery worker."""

from __future__ import annotations

import datetime
import email
import email.message
import email.policy
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from tests.browser.checkers import (
    CHROMIUM,
    FIGURES,
    SERIOUS,
    require_axe,
    require_chromium,
    watch_csp,
)
from tests.helpers import wait_for

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Playwright's sync API keeps an event loop running in the test thread, and Django
# refuses database calls from a thread with a running loop. The test thread only waits
# on the browser, so that check guards nothing here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    require_chromium()
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
        "timeout": 60_000,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1000, "height": 760}, "locale": "en-US"}


@pytest.fixture
def csp_violations() -> list[str]:
    """What the browser refused under the pages' Content-Security-Policy."""
    return []


@pytest.fixture
def new_context(new_context, csp_violations):
    """Every browser context of a test (`page`'s and any other) is watched: a test in
    which a page breaks its policy fails."""

    def make(**kwargs: Any):
        context = new_context(**kwargs)
        watch_csp(context, csp_violations)
        return context

    yield make
    assert csp_violations == [], "Content-Security-Policy violations:\n" + "\n".join(csp_violations)


@pytest.fixture
def page(page):
    require_axe()
    page.set_default_timeout(20_000)
    return page


def pytest_terminal_summary(terminalreporter) -> None:
    if not any(FIGURES.values()):
        return
    write = terminalreporter.write_line
    terminalreporter.section("accessibility, validity, deliverability")
    for name, violations in sorted(FIGURES["axe"].items()):
        serious = sum(1 for v in violations if v["impact"] in SERIOUS and not v.get("known"))
        every = ", ".join(
            f"{v['id']} ({v['impact']}{'; known, not ours' if v.get('known') else ''})"
            for v in violations
        )
        write(f"axe  {name}: {serious} serious or critical; all violations: {every or 'none'}")
    for name, errors in sorted(FIGURES["vnu"].items()):
        write(f"vnu  {name}: {len(errors)} errors")
    for name, (score, rules) in sorted(FIGURES["spamassassin"].items()):
        write(f"spamassassin  {name}: score {score} ({', '.join(rules) or 'no rule fired'})")


# --- a real SMTP server, a real worker ------------------------------------------------


class Mailbox:
    """What a real SMTP server (aiosmtpd) received."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: set[str] = set()  # answered 550, as for a mailbox that does not exist
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    def raw(self, address: str) -> list[bytes]:
        with self.lock:
            return [raw for rcpts, raw in self.messages if address in rcpts]

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(r, policy=email.policy.default) for r in self.raw(address)]

    def wait(self, address: str, count: int = 1, timeout: float = 60) -> email.message.EmailMessage:
        """The `count`-th message to `address`, once it has arrived."""
        wait_for(lambda: len(self.raw(address)) >= count, timeout=timeout)
        return self.to(address)[count - 1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mailbox(settings, live_server, celery_worker_process) -> Iterator[Mailbox]:
    """A real SMTP server that both the live server and a real Celery worker send to;
    links in messages lead to the live server."""
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 10
    settings.EMAIL_USE_TLS = False
    settings.SITE_URL = live_server.url
    celery_worker_process(EMAIL_URL=f"smtp://127.0.0.1:{port}", SITE_URL=live_server.url)
    try:
        yield box
    finally:
        controller.stop()


# --- content ----------------------------------------------------------------------------

ARTICLE_ONE = """Minsk has **welcomed** the new customs rules, but officials say privately
that the [union treaty](https://example.org/treaty/) gives them little room.

- the tariff schedule takes effect in March;
- the border posts stay until the summer.
"""
ARTICLE_TWO = """Kyiv's parliament passed the budget at the third reading. *Analysts* expect
the IMF mission to return before the end of the month.
"""
ARTICLES = [
    ("Minsk and the customs union", ARTICLE_ONE),
    ("Kyiv passes its budget", ARTICLE_TWO),
]


@pytest.fixture
def newsroom(db) -> dict[str, Any]:
    """The demo back issue (the seed, sent, with masthead and footer), a sent issue
    written in Markdown, a second publication, one that requires approval, and an
    approved issue ready to send."""
    from issues.demo import load_seed
    from issues.models import Article, Issue, Publication, Volume

    load_seed()
    monitor = Publication.objects.get(slug="monitor")
    fortnight = Publication.objects.create(
        name="Fortnight in Review",
        slug="fortnight",
        sender_name="Fortnight in Review",
        sender_email="fortnight@example.org",
        description="Every other Friday, the two weeks that mattered.",
    )
    brief = Publication.objects.create(
        name="Restricted Brief",
        slug="brief",
        sender_email="brief@example.org",
        requires_approval=True,
    )
    volume = Volume.objects.get(publication=monitor, number=6)
    markdown = Issue.objects.create(
        publication=monitor,
        volume=volume,
        number=10,
        title="Customs and budgets",
        date=datetime.date(2000, 1, 14),
        status=Issue.Status.SENT,
        sent_at=timezone.now(),
    )
    for position, (headline, body) in enumerate(ARTICLES):
        Article.objects.create(
            issue=markdown, position=position, headline=headline, body=body, authors="A. Analyst"
        )
    approved = Issue.objects.create(
        publication=monitor, volume=volume, number=12, status=Issue.Status.APPROVED
    )
    for position, (headline, body) in enumerate(ARTICLES):
        Article.objects.create(issue=approved, position=position, headline=headline, body=body)
    return {
        "monitor": monitor,
        "fortnight": fortnight,
        "brief": brief,
        "back_issue": Issue.objects.get(publication=monitor, volume=volume, number=11),
        "markdown_issue": markdown,
        "approved": approved,
    }


@pytest.fixture(scope="session")
def base_url() -> None:
    # Pages are opened by their full live-server URL; this replaces pytest-base-url's
    # fixture, which pytest deprecates (an instance-method session fixture).
    return None
