"""SMTP PIPELINING (RFC 2920): several commands in one write, their replies read after.

smtplib has no interface for it; this is the one place that writes commands itself."""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING

from delivery.rendering import Recipient, RenderedIssue
from delivery.transports.base import Outcome

if TYPE_CHECKING:
    from delivery.transports.smtp import SmtpTransport


def _smtp_reason(code: int, message: bytes | str) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"SMTP {code} {message}"[:1000]


def _envelope_address(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def _dot_stuffed(raw: bytes) -> bytes:
    data = raw.replace(b"\n.", b"\n..")
    if data[:1] == b".":
        data = b"." + data
    if data[-2:] != b"\r\n":
        data += b"\r\n"
    return data + b".\r\n"


def _refusal(
    outcome: Outcome, delivery_id: int, code: int, reply: bytes | str, *, ours: bool = False
) -> None:
    """A message the server refused: failed for good on 5xx, sent again later on 4xx,
    as it is when the refusal is of our sender (`ours`: our configuration)."""
    bucket = outcome.failed if 500 <= code < 600 and not ours else outcome.retry
    bucket[delivery_id] = _smtp_reason(code, reply)


def send(
    transport: SmtpTransport,
    smtp: smtplib.SMTP,
    rendered: RenderedIssue,
    pending: list[tuple[int, Recipient]],
    date: str,
    outcome: Outcome,
) -> None:
    """With PIPELINING (RFC 2920) a message's content may open the next group: it
    goes in one write with the next message's MAIL, RCPT and DATA, one round trip
    a message. A message whose content was written but whose reply did not come is
    in doubt and goes again later, as are the ones not sent yet."""
    sender, size = rendered.envelope_from, smtp.has_extn("size")
    held: tuple[int, bytes] | None = None  # DATA accepted; its content goes next
    while pending or held:
        out, current = [], None
        if held is not None:
            out.append(_dot_stuffed(held[1]))
        if pending:
            delivery_id, recipient = pending.pop(0)
            try:
                rcpt = _envelope_address(recipient.email)
            except UnicodeError as exc:
                outcome.failed[delivery_id] = f"Address cannot be sent to: {exc}"
                continue
            raw = rendered.as_bytes(recipient, date=date)
            option = f" SIZE={len(raw)}" if size else ""
            out.append(f"MAIL FROM:<{sender}>{option}\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
            current = (delivery_id, raw)
        try:
            smtp.send(b"".join(out))
            if held is not None:
                code, reply = smtp.getreply()
                if code == 250:
                    outcome.sent[held[0]] = ""
                else:
                    _refusal(outcome, held[0], code, reply)
                held = None
            if current is not None:
                replies = [smtp.getreply() for _ in range(3)]  # MAIL, RCPT, DATA
                (mail, _), (rcpt_code, _), (data, _) = replies
                if mail == 250 and rcpt_code in (250, 251) and data == 354:
                    held, current = current, None
                    continue
                if data == 354:  # DATA taken although the envelope was not: end it
                    smtp.send(b".\r\n")
                    smtp.getreply()
                code, reply = next(r for r in replies if r[0] not in (250, 251, 354))
                _refusal(outcome, current[0], code, reply, ours=mail != 250)
                current = None
                if code == 421:
                    raise smtplib.SMTPServerDisconnected(_smtp_reason(code, reply))
                smtp.rset()
        except (OSError, smtplib.SMTPException) as exc:
            doubt = [item[0] for item in (held, current) if item is not None]
            transport._lost(outcome, doubt + [i for i, _ in pending], exc)
            return
