"""The anymail batch path: one call per format and batch, cut at each ESP's limit, each
recipient's variables and headers in the call, and failures classified per call."""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
from django.core import mail

from delivery import transports
from delivery.rendering import Recipient, rendered_issue
from delivery.transports import AnymailTransport, esp

pytestmark = pytest.mark.django_db


def recipients(count: int, *, start: int = 0, format: str = "html") -> list[tuple[int, Recipient]]:
    return [
        (
            n,
            Recipient.for_subscription(
                issue_id=1,
                subscriber_id=n,
                subscription_id=n,
                email=f"reader{n}@example.org",
                name="Jürgen Müller" if n % 7 == 0 else f"Reader {n}",
                format=format,
            ),
        )
        for n in range(start, start + count)
    ]


def test_an_invalid_address_sends_the_batch_again_later(issue, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    batch = recipients(3)
    batch[1] = (1, batch[1][1]._replace(email="reader@"))

    with AnymailTransport("test") as transport:
        outcome = transport.send(rendered_issue(issue), batch)

    assert sorted(outcome.retry) == [0, 1, 2]
    assert all(e.startswith("AnymailInvalidAddress: ") for e in outcome.retry.values())
    assert mail.outbox == []


class Mailgun(BaseHTTPRequestHandler):
    """Mailgun's sending endpoint as far as anymail cares: records each request."""

    protocol_version = "HTTP/1.1"
    received: list[tuple[str, bytes]]

    def log_message(self, *args: object) -> None:
        pass

    delay = 0.0  # seconds before each answer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.headers["Content-Type"], body))
        time.sleep(self.delay)
        answer = json.dumps({"id": f"<{len(self.received)}@example.org>", "message": "Queued."})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())


@pytest.fixture
def mailgun(settings) -> Iterator[list[tuple[str, bytes]]]:
    """A local Mailgun API; yields the (Content-Type, body) of each call it gets."""
    received: list[tuple[str, bytes]] = []
    handler = type("Handler", (Mailgun,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "key-test",
        "MAILGUN_API_URL": f"http://127.0.0.1:{server.server_port}/v3",
    }
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def form(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The fields of a form as the ESP reads them, in order, whatever the encoding."""
    if content_type == "application/x-www-form-urlencoded":
        return parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert content_type.startswith("multipart/form-data; boundary=")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.defects == []
    return [
        (
            part.get_param("name", header="content-disposition"),
            part.get_payload(decode=True).decode("utf-8"),
        )
        for part in message.iter_parts()
    ]


def to_fields(content_type: str, body: bytes) -> list[str]:
    return [value for name, value in form(content_type, body) if name == "to"]


def test_a_mailgun_batch_carries_each_recipients_variables_and_headers(issue, mailgun):
    rendered = rendered_issue(issue)
    batch = recipients(40) + recipients(15, start=40, format="text")

    with AnymailTransport("mailgun") as transport:
        outcome = transport.send(rendered, batch)

    assert len(mailgun) == 2  # one call per format
    for (content_type, body), group in zip(mailgun, (batch[:40], batch[40:]), strict=True):
        fields = form(content_type, body)
        values = dict(fields)
        assert to_fields(content_type, body) == [r.email for _, r in group]
        assert values["h:List-Unsubscribe"] == "%recipient.h:List-Unsubscribe%"
        assert values["h:Message-Id"] == "%recipient.h:Message-Id%"
        assert values["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert values["v:delivery_id"] == "%recipient.v:delivery_id%"
        assert "%recipient.unsubscribe_url%" in values["text"]
        variables = json.loads(values["recipient-variables"])
        for delivery_id, r in group:
            assert variables[r.email] == {
                "email": r.email,  # the fields the templates use; not the name
                "unsubscribe_url": r.unsubscribe_url,
                "preferences_url": r.preferences_url,
                "v:delivery_id": str(delivery_id),
                "h:List-Unsubscribe": f"<{r.unsubscribe_url}>",
                "h:Message-Id": rendered.message_id(r),
            }
    assert sorted(outcome.sent) == list(range(55))
    assert set(outcome.sent.values()) == {"<1@example.org>", "<2@example.org>"}
    assert not outcome.retry and not outcome.failed


@pytest.mark.parametrize(
    ("chunk", "calls"),
    [(1000, [1000]), (2300, [1000, 1000, 300]), (999, [999])],
)
def test_mailgun_batches_hold_up_to_1000_recipients(issue, mailgun, chunk, calls):
    batch = recipients(chunk) + recipients(7, start=chunk, format="text")

    with transports.transport() as transport:
        outcome = transport.send(rendered_issue(issue), batch)

    assert transport.step == 1000  # recorded a batch call at a time
    assert [len(to_fields(ct, body)) for ct, body in mailgun] == [*calls, 7]
    assert len(outcome.sent) == chunk + 7


def test_other_esps_batch_at_500_by_default(issue, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"

    with transports.transport() as transport:
        outcome = transport.send(rendered_issue(issue), recipients(1200))

    assert transport.step == 500
    assert [len(m.to) for m in mail.outbox] == [500, 500, 200]
    assert len(outcome.sent) == 1200


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
@pytest.mark.parametrize("esp", ["sendgrid", "postmark", "resend", "unisender_go"])
def test_an_esp_without_merge_tags_gets_a_call_a_recipient_recorded_every_100(esp, settings):
    settings.EMAIL_BACKEND = f"anymail.backends.{esp}.EmailBackend"
    settings.ANYMAIL = {
        f"{esp.upper()}_API_KEY": "key",
        f"{esp.upper()}_SERVER_TOKEN": "token",
        f"{esp.upper()}_API_URL": "https://esp.example.org/",
    }
    transport = transports.transport()

    assert transport.step == 100
    assert [len(unit) for unit in transport.units(recipients(3))] == [1, 1, 1]


def test_calls_of_a_process_start_a_build_apart():
    starts = esp.Starts()
    starts.took(0.04)  # a call took 40 ms of CPU
    started: list[float] = []

    def call() -> None:
        starts.wait_turn()
        started.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gaps = [b - a for a, b in itertools.pairwise(sorted(started))]
    assert len(gaps) == 3 and min(gaps) >= 0.035


def test_the_build_is_learned_from_cpu_not_from_the_wait_for_the_answer(
    issue, mailgun, monkeypatch
):
    monkeypatch.setattr(esp, "starts", esp.Starts())
    monkeypatch.setattr(Mailgun, "delay", 0.3)

    with AnymailTransport("mailgun") as transport:
        transport.send(rendered_issue(issue), recipients(200))

    assert 0 < esp.starts.build < 0.3  # the 300 ms the answer took are not counted


def test_an_esp_chunk_gives_each_call_in_flight_two_batches(settings, mailgun):
    settings.DELIVERY_ESP_CALLS = 4
    assert transports.rows_to_fill_lanes() == 8000  # Mailgun: 1,000 a call
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert transports.rows_to_fill_lanes() == 0  # a connection takes a message at a time
