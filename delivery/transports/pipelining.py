"""SMTP PIPELINING (RFC 2920), which smtplib has no interface for.

A client may send MAIL, RCPT and DATA in one write and read the three replies after
(RFC 2920 §3.1: DATA is the last command of a group), and the content of one message,
ended by "." (RFC 5321 §4.1.1.4, dot-stuffed as §4.5.2 says), may go in the same write
as the next message's MAIL, RCPT and DATA: one round trip a message instead of four.
This module writes those commands itself over smtplib's connection (`SMTP.send`) and
reads the replies with `SMTP.getreply`, in the order they were sent; everything else
(connecting, EHLO, TLS, authentication, RSET) is smtplib's.

A 421 reply or a lost connection ends the connection at once. A message whose content
was written but whose reply did not come is in doubt: it goes again later, with the
same Message-ID. The others (not written yet, or refused with 421 by a server that
closes the connection) go on over a new connection.
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


CLOSING = 421  # the server's "service not available, closing the channel" (RFC 5321)


class Ended(Exception):
    """The connection ended: `error` says why; `again` are the messages that were not
    sent and may go at once over a new connection (taken and not started, or refused
    with 421 by a server closing the connection)."""

    def __init__(self, error: BaseException, again: list) -> None:
        super().__init__(str(error))
        self.error, self.again = error, again


def send(
    smtp: smtplib.SMTP,
    rendered: RenderedIssue,
    take: Take,
    report: Report,
    date: str,
    *,
    once: set[int] | None = None,
) -> None:
    """Send what `take` gives over `smtp` (greeted, offering PIPELINING) until it gives
    nothing more. A 421 reply or a lost connection ends it at once (`Ended`): then the
    messages in doubt (content written, no reply read) have been reported for a retry,
    and the others are the caller's to send again. `once`: the messages refused with
    421 before, which a second 421 sends to a retry instead."""
    once = set() if once is None else once
    size = smtp.has_extn("size")
    # DATA accepted; its content goes next: (item, content)
    held: tuple[tuple, bytes] | None = None
    pending: list = []  # taken, not started
    done = Outcome()  # reported a unit at a time

    def closing(item: tuple, code: int, reply: bytes) -> None:
        """`item` was refused by a server that closes the connection."""
        if item[0] in once:
            done.merge(_outcome(item[0], code, reply))
        else:
            once.add(item[0])
            pending.insert(0, item)
        raise smtplib.SMTPServerDisconnected(smtp_failure(code, reply).reason)

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
                return
        out, current = [], None
        if held is not None:
            out.append(dot_stuffed(held[1]))
        if pending:
            item = pending.pop(0)
            try:
                rcpt = envelope_address(item[1].email)
            except UnicodeError as exc:
                done.fail([item[0]], failure(exc))
                continue
            raw = rendered.as_bytes(item[1], date=date)
            option = f" SIZE={len(raw)}" if size else ""
            sender = envelope_sender(default=rendered.envelope_from, delivery_id=item[0])
            out.append(f"MAIL FROM:<{sender}>{option}\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
            current = (item, raw)
        try:
            smtp.send(b"".join(out))
            if held is not None:
                code, reply = smtp.getreply()
                item, held = held[0], None
                if code == CLOSING:
                    if current is not None:  # its envelope only went: not sent
                        pending.insert(0, current[0])
                        current = None
                    closing(item, code, reply)
                done.merge(_outcome(item[0], code, reply))
            if current is not None:
                replies = [smtp.getreply() for _ in range(3)]  # MAIL, RCPT, DATA
                (mail, _), (rcpt_code, _), (data, _) = replies
                if mail == 250 and rcpt_code in (250, 251) and data == 354:
                    held, current = current, None
                    continue
                code, reply = next(r for r in replies if r[0] not in (250, 251, 354))
                item, current = current[0], None
                if CLOSING in (mail, rcpt_code, data):
                    closing(item, code, reply)
                if data == 354:  # DATA taken although the envelope was not: end it
                    smtp.send(b".\r\n")
                    smtp.getreply()
                done.merge(_outcome(item[0], code, reply, ours=mail != 250))
                if mail == 250:
                    done.refuse(item[0], rcpt_code, replies[1][1])
                smtp.rset()
        except (OSError, smtplib.SMTPException) as exc:
            if held is not None:  # its content went, its reply did not come
                doubt = SendFailure(f"{type(exc).__name__}: {exc}", permanent=False)
                done.fail([held[0][0]], doubt)
            if current is not None:  # only its envelope went
                pending.insert(0, current[0])
            report(done)
            raise Ended(exc, pending) from exc
