"""A new reader, over real HTTP, with a real Celery worker and a real SMTP server:
subscribe -> confirmation email -> confirm (GET shows a button, POST confirms) ->
export says active -> one-click unsubscribe from a cookieless client -> unsubscribed.
A second subscribe for the address then sends nothing and looks like a stranger's."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookies import SimpleCookie

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management import call_command

from issues.models import Publication
from subscriptions.models import Subscription
from tests.helpers import wait_for


class Catcher:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    catcher = Catcher()
    controller = Controller(catcher, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, catcher
    controller.stop()


class Browser:
    """Just enough of a browser: keeps the CSRF cookie, sends forms. The site runs
    behind a TLS proxy in production, so requests say X-Forwarded-Proto: https."""

    def __init__(self, base: str, cookies: bool = True) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self.keep_cookies = cookies

    def request(self, method: str, path: str, data: dict | str | None = None):
        headers = {"X-Forwarded-Proto": "https"}
        if self.keep_cookies:  # a browser says where a form comes from
            headers["Origin"] = "https://" + self.base.split("//")[1]
        body = None
        if data is not None:
            body = data if isinstance(data, str) else urllib.parse.urlencode(data, doseq=True)
            body = body.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        req = urllib.request.Request(self.base + path, data=body, headers=headers, method=method)
        try:
            response = urllib.request.urlopen(req, timeout=30)
        except urllib.error.HTTPError as exc:
            response = exc
        text = response.read().decode()
        if self.keep_cookies:
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
        return response.status, text, response.headers

    def get(self, path: str):
        return self.request("GET", path)

    def post_form(self, path: str, data: dict):
        return self.request(
            "POST", path, {**data, "csrfmiddlewaretoken": self.cookies["csrftoken"]}
        )


def site_path(url: str) -> str:
    return url.removeprefix(settings.SITE_URL)


def export() -> list[dict[str, str]]:
    out = io.StringIO()
    call_command("export_subscribers", "--publication", "monitor", stdout=out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_new_reader_over_http_with_real_smtp_and_worker(
    live_server, smtp_server, celery_worker_process, settings
):
    controller, catcher = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = controller.hostname, controller.port
    Publication.objects.create(
        name="The Monitor", slug="monitor", sender_email="monitor@example.org"
    )
    Publication.objects.create(name="Fortnight in Review", slug="fortnight")
    celery_worker_process(EMAIL_URL=f"smtp://{controller.hostname}:{controller.port}")

    reader = Browser(live_server.url)
    status, page, _ = reader.get("/subscribe/")
    assert status == 200 and 'name="email"' in page

    form = {"email": "new.reader@example.org", "name": "New Reader", "publications": "monitor"}
    status, answer, _ = reader.post_form("/subscribe/", form)
    assert status == 200 and "Check your email" in answer

    wait_for(lambda: catcher.to("new.reader@example.org"), timeout=60)
    confirmation = catcher.to("new.reader@example.org")[0]
    assert confirmation["From"] == "The Monitor <monitor@example.org>"
    assert confirmation.get_body(("html",)) is not None
    text = confirmation.get_body(("plain",)).get_content()
    confirm = site_path(re.search(r"\S+/subscribe/confirm/\S+/", text).group(0))

    status, page, _ = reader.get(confirm)
    assert status == 200 and page.count("<button") == 1
    assert export()[0]["status"] == "pending"  # a GET changes nothing

    status, page, _ = reader.post_form(confirm, {})
    assert status == 200 and "you will receive the next issue" in page
    row = export()[0]
    assert (row["email"], row["status"], row["source"]) == (
        "new.reader@example.org",
        "active",
        "web",
    )
    assert row["confirmed_at"]

    wait_for(lambda: len(catcher.to("new.reader@example.org")) == 2, timeout=60)
    welcome = catcher.to("new.reader@example.org")[1].get_body(("plain",)).get_content()
    assert "/preferences/" in welcome
    unsubscribe = site_path(re.search(r"\S+/unsubscribe/\S+/", welcome).group(0))

    # the mailbox provider's RFC 8058 POST: no cookies, no CSRF token, no redirect
    provider = Browser(live_server.url, cookies=False)
    status, body, headers = provider.request("POST", unsubscribe, "List-Unsubscribe=One-Click")
    assert status == 200 and "Location" not in headers and "unsubscribed" in body
    assert export()[0]["status"] == "unsubscribed"

    # subscribing again: nothing new is sent (10-minute rule), and the answer is the
    # stranger's answer
    status_known, answer_known, _ = reader.post_form("/subscribe/", form)
    stranger = Browser(live_server.url)
    stranger.get("/subscribe/")
    status_new, answer_new, _ = stranger.post_form(
        "/subscribe/", {**form, "email": "stranger@example.org", "name": "Stranger"}
    )
    assert (status_known, answer_known) == (status_new, answer_new) == (200, answer)
    wait_for(lambda: catcher.to("stranger@example.org"), timeout=60)
    time.sleep(2)
    assert len(catcher.to("new.reader@example.org")) == 2
    assert Subscription.objects.get(subscriber__email="new.reader@example.org").status == "pending"
