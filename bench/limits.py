"""`smtp_limit` and `esp_limit`: what this machine can push through the same stand-ins
with no Django, no database and no Celery in the sending processes.

The same number of processes as the worker (2), each with as many connections (SMTP)
or calls (ESP) in flight as a worker process keeps, sending messages and batch bodies
built beforehand by the engine itself: the finished bytes of real recipients, and the
Mailgun form anymail builds for a batch of 1,000. `smtp` and `esp_batch` report their
share of it (`of_limit`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.test.utils import override_settings
from django.utils import timezone

from delivery.rendering import Recipient, rendered_issue
from delivery.transports import AnymailTransport
from delivery.transports.pipelining import dot_stuffed
from subscriptions import tokens

PROCESSES = 2  # as the bench's worker: --concurrency=2
DISTINCT = 2000  # messages built beforehand, sent round and round


def _recipients(issue, n: int) -> list[tuple[int, Recipient]]:
    unsubscribe = tokens.url_maker(tokens.UNSUBSCRIBE, "unsubscribe")
    preferences = tokens.url_maker(tokens.FOOTER_PREFERENCES, "preferences")
    return [
        (
            i,
            Recipient.for_subscription(
                issue_id=issue.pk,
                subscriber_id=i,
                subscription_id=i,
                email=f"reader{i}@example.org",
                name="",
                unsubscribe=unsubscribe,
                preferences=preferences,
            ),
        )
        for i in range(n)
    ]


# --- SMTP ---------------------------------------------------------------------------


async def _smtp_connection(port: int, messages: list[tuple[bytes, bytes]], count: int) -> None:
    """Pipelined as the engine does it: content and the next envelope in one write."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"EHLO limit.bench\r\n")
    while not (await reader.readline()).startswith(b"250 "):
        pass
    held = None
    for n in range(count + 1):
        out = [held] if held is not None else []
        envelope, content = messages[n % len(messages)] if n < count else (None, None)
        if envelope is not None:
            out.append(envelope)
        writer.write(b"".join(out))
        if held is not None and not (await reader.readline()).startswith(b"250"):
            raise RuntimeError("message refused")
        if envelope is not None:
            for _ in range(3):
                await reader.readline()
        held = content
    writer.write(b"QUIT\r\n")
    await reader.readline()
    writer.close()


def _smtp_process(port: int, messages: list, count: int, connections: int) -> None:
    async def main() -> None:
        shares = [count // connections + (i < count % connections) for i in range(connections)]
        await asyncio.gather(*(_smtp_connection(port, messages, c) for c in shares if c))

    asyncio.run(main())


def smtp_messages(issue) -> list[tuple[bytes, bytes]]:
    """(MAIL, RCPT and DATA; the dot-stuffed content) of DISTINCT finished messages."""
    rendered = rendered_issue(issue)
    date = format_datetime(timezone.now())
    sender = rendered.envelope_from
    return [
        (
            f"MAIL FROM:<{sender}>\r\nRCPT TO:<{r.email}>\r\nDATA\r\n".encode(),
            dot_stuffed(rendered.as_bytes(r, date=date)),
        )
        for _, r in _recipients(issue, DISTINCT)
    ]


def _run(target, args_for: list[tuple]) -> float:
    """Seconds for PROCESSES forked senders to finish."""
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=target, args=args) for args in args_for]
    start = time.perf_counter()
    for child in children:
        child.start()
    for child in children:
        child.join()
        if child.exitcode:
            raise RuntimeError(f"a limit sender exited with {child.exitcode}")
    return time.perf_counter() - start


def smtp_limit_rate(messages: list, port: int, n: int) -> float:
    connections = settings.DELIVERY_SMTP_CONNECTIONS
    shares = [n // PROCESSES + (i < n % PROCESSES) for i in range(PROCESSES)]
    elapsed = _run(_smtp_process, [(port, messages, s, connections) for s in shares])
    return n / elapsed


# --- ESP ----------------------------------------------------------------------------


class _Capture(BaseHTTPRequestHandler):
    """Answers as Mailgun does and keeps what it was sent."""

    protocol_version = "HTTP/1.1"
    captured: list[tuple[str, dict[str, str], bytes]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.captured.append((self.path, dict(self.headers.items()), body))
        answer = b'{"id": "<limit@example.org>", "message": "Queued. Thank you."}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def esp_body(issue) -> tuple[bytes, dict[str, str], str]:
    """The form anymail's Mailgun backend sends for a batch of 1,000 of our recipients,
    as a local server received it: body, headers, path."""
    _Capture.captured = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/v3"
    try:
        with (
            override_settings(
                EMAIL_BACKEND="anymail.backends.mailgun.EmailBackend",
                ANYMAIL={"MAILGUN_API_KEY": "key-bench", "MAILGUN_API_URL": url},
            ),
            AnymailTransport("mailgun") as transport,
        ):
            outcome = transport.send(rendered_issue(issue), _recipients(issue, 1000))
    finally:
        server.shutdown()
        server.server_close()
    if len(outcome.sent) != 1000 or len(_Capture.captured) != 1:
        raise RuntimeError(f"the batch to capture did not go: {outcome}")
    path, headers, body = _Capture.captured[0]
    skip = {"content-length", "host", "connection"}
    return body, {k: v for k, v in headers.items() if k.lower() not in skip}, path


async def _esp_connection(port: int, head: bytes, body: bytes, calls: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(calls):
        writer.write(head + body)
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(status)
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
    writer.close()


def _esp_process(port: int, head: bytes, body: bytes, calls: int, connections: int) -> None:
    async def main() -> None:
        shares = [calls // connections + (i < calls % connections) for i in range(connections)]
        await asyncio.gather(*(_esp_connection(port, head, body, c) for c in shares if c))

    asyncio.run(main())


def esp_limit_rate(captured: tuple[bytes, dict[str, str], str], port: int, n: int) -> float:
    body, headers, path = captured
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += (f"{k}: {v}" for k, v in headers.items() if k.lower() != "host")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    calls = -(-n // 1000)
    connections = settings.DELIVERY_ESP_CALLS
    shares = [calls // PROCESSES + (i < calls % PROCESSES) for i in range(PROCESSES)]
    elapsed = _run(_esp_process, [(port, head, body, s, connections) for s in shares])
    return calls * 1000 / elapsed
