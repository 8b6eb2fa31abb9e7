"""SMTP PIPELINING (RFC 2920), which smtplib has no interface for.

A client may send MAIL, RCPT and DATA in one write and read the three replies after
(RFC 2920 §3.1: DATA is the last command of a group), and the content of one message,
ended by "." (RFC 5321 §4.1.1.4, dot-stuffed as §4.5.2 says), may go in the same write
as the next message's MAIL, RCPT and DATA: one round trip a message instead of four.
This module writes those commands itself over smtplib's connection (`SMTP.send`) and
reads the replies with `SMTP.getreply`, in the order they were sent; everything else
(connecting, EHLO, TLS, authentication, RSET) is smtplib's.

A message whose content was written but whose reply did not come is in doubt: it goes
again later, with the same Message-ID, as do the ones not sent yet.
"""

from __future__ import annotations

import smtplib

from delivery.rendering import RenderedIssue
from delivery.transports.base import Outcome, Report, Take
from delivery.verp import envelope_sender
from monitor_site.retry import SendFailure, failure, smtp_failure


def envelope_address(address: str) -> str:
    """The address for MAIL/RCPT: the domain in IDNA, the local part as given."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def dot_stuffed(raw: bytes) -> bytes:
    """A message's content as DATA carries it (RFC 5321 §4.5.2), with its ending."""
    data = raw.replace(b"\n.", b"\n..")
    if data[:1] == b".":
        data = b"." + data
    if data[-2:] != b"\r\n":
        data += b"\r\n"
    return data + b".\r\n"


def _outcome(delivery_id: int, code: int, reply: bytes | str, *, ours: bool = False) -> Outcome:
    if code == 250:
        return Outcome(sent={delivery_id: ""})
    return Outcome().fail([delivery_id], smtp_failure(code, reply, ours=ours))


def send(
    smtp: smtplib.SMTP, rendered: RenderedIssue, take: Take, report: Report, date: str
) -> BaseException | None:
    """Send what `take` gives over `smtp` (greeted, offering PIPELINING) until it gives
    nothing more. Returns the error that ended the connection, if one did; then the
    messages in doubt and those taken but not sent have been reported for a retry."""
    size = smtp.has_extn("size")
    held: tuple[int, bytes] | None = None  # DATA accepted; its content goes next
    pending: list = []  # taken, not started
    done = Outcome()  # reported a unit at a time
    while True:
        if not pending:
            if done:
                report(done)
                done = Outcome()
            # Wait for more only with nothing held: held content goes out at once.
            unit = take(held is None)
            if unit is not None:
                pending = list(unit)
            elif held is None:
                return None
        out, current = [], None
        if held is not None:
            out.append(dot_stuffed(held[1]))
        if pending:
            delivery_id, recipient = pending.pop(0)
            try:
                rcpt = envelope_address(recipient.email)
            except UnicodeError as exc:
                done.fail([delivery_id], failure(exc))
                continue
            raw = rendered.as_bytes(recipient, date=date)
            option = f" SIZE={len(raw)}" if size else ""
            sender = envelope_sender(default=rendered.envelope_from, delivery_id=delivery_id)
            out.append(f"MAIL FROM:<{sender}>{option}\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
            current = (delivery_id, raw)
        try:
            smtp.send(b"".join(out))
            if held is not None:
                code, reply = smtp.getreply()
                done.merge(_outcome(held[0], code, reply))
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
                done.merge(_outcome(current[0], code, reply, ours=mail != 250))
                if mail == 250:
                    done.refuse(current[0], rcpt_code, replies[1][1])
                current = None
                if code == 421:
                    raise smtplib.SMTPServerDisconnected(smtp_failure(code, reply).reason)
                smtp.rset()
        except (OSError, smtplib.SMTPException) as exc:
            doubt = [item[0] for item in (held, current) if item is not None]
            ids = doubt + [i for i, _ in pending]
            report(
                Outcome().fail(ids, SendFailure(f"{type(exc).__name__}: {exc}", permanent=False))
            )
            return exc
