"""Plain SMTP: finished bytes over a connection opened by Django's SMTP backend (so its
TLS and authentication settings apply), one transaction per recipient, with
PIPELINING (`pipelining`) where the server offers it and smtplib's `sendmail`
elsewhere. A worker process keeps up to DELIVERY_SMTP_CONNECTIONS of them open at once."""

from __future__ import annotations

import contextlib
import smtplib
from email.utils import format_datetime

from django.conf import settings
from django.core.mail import get_connection
from django.utils import timezone

from delivery.rendering import RenderedIssue
from delivery.transports import pipelining
from delivery.transports.base import Batch, Outcome, Report, Take, Transport
from delivery.verp import envelope_sender
from monitor_site.retry import SendFailure, failure

UNIT = 8  # messages a connection takes at a time, at most
HELD = 32  # ... and all the connections of a worker process together
# Connections a transport opens in a row that end before sending a message, at most:
# then what it holds goes to a retry and the other connections go on.
RECONNECTS = 3


class SmtpTransport(Transport):
    def __init__(self) -> None:
        self.backend = get_connection()
        self.lanes = settings.DELIVERY_SMTP_CONNECTIONS
        # Messages a connection takes at a time: all of them together hold about HELD.
        self.unit = max(1, min(UNIT, HELD // self.lanes))
        # Handed out a step at a time, with the send's state read before each. A pause
        # lets a step go out and what each connection holds: the unit it took and the
        # message before, whose content goes in the same write as the unit's first
        # envelope. Together at most Transport.step (100) a worker process.
        self.step = max(self.unit, Transport.step - self.lanes * (self.unit + 1))

    def __exit__(self, *exc: object) -> None:
        # closing a broken connection may fail too
        with contextlib.suppress(Exception):
            self.backend.close()

    def units(self, batch: Batch) -> list[Batch]:
        """A few messages at a time, fewer where the chunk is small: each connection
        keeps pipelining from one unit into the next, and the last units of a chunk
        are spread over the connections."""
        size = max(1, min(self.unit, len(batch) // (self.lanes * UNIT)))
        return [batch[i : i + size] for i in range(0, len(batch), size)]

    def send(self, rendered: RenderedIssue, batch: Batch) -> Outcome:
        outcome, items = Outcome(), list(batch)
        self.send_from(rendered, lambda block: [items.pop(0)] if items else None, outcome.merge)
        return outcome

    def send_from(self, rendered: RenderedIssue, take: Take, report: Report) -> None:
        """Send units until there are no more. A connection that ends (a 421, a lost
        connection) is replaced at once and the messages not sent go on over the new
        one, until RECONNECTS connections in a row end before sending anything."""
        date = format_datetime(timezone.now())
        unit = take(True)
        if unit is None:
            return
        again: list = list(unit)
        once: set[int] = set()  # refused with 421 once: a second time goes to a retry
        sent = 0
        strikes = 0

        def counted(outcome: Outcome) -> None:
            nonlocal sent
            sent += len(outcome.sent)
            report(outcome)

        while True:
            taker = _first_then(again, take)
            before = sent
            try:
                if self.backend.connection is None:
                    self.backend.open()
                smtp = self.backend.connection
                smtp.ehlo_or_helo_if_needed()
            except (OSError, smtplib.SMTPException) as exc:
                return self._lost(again, report, exc)
            try:
                if smtp.does_esmtp and smtp.has_extn("pipelining"):
                    pipelining.send(smtp, rendered, taker, counted, date, once=once)
                else:
                    self._send_plain(smtp, rendered, taker, counted, date, once)
                return None
            except pipelining.Ended as ended:
                self.close()
                again = ended.again
                strikes = 0 if sent > before else strikes + 1
                if strikes >= RECONNECTS:
                    return self._lost(again, report, ended.error)
                if not again and (unit := take(True)) is None:
                    return None
                again = again or list(unit)

    def _send_plain(
        self,
        smtp: smtplib.SMTP,
        rendered: RenderedIssue,
        take: Take,
        report: Report,
        date: str,
        once: set[int],
    ) -> None:
        """smtplib's `sendmail`, a message at a time; a 421 or a lost connection ends
        it (`pipelining.Ended`) with the messages not sent."""
        while (unit := take(True)) is not None:
            for i, (delivery_id, recipient) in enumerate(unit):
                try:
                    rcpt = pipelining.envelope_address(recipient.email)
                    raw = rendered.as_bytes(recipient, date=date)
                    sender = envelope_sender(
                        default=rendered.envelope_from, delivery_id=delivery_id
                    )
                    smtp.sendmail(sender, [rcpt], raw)
                    report(Outcome(sent={delivery_id: ""}))
                except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as exc:
                    refused = failure(exc)
                    if _code(exc) == pipelining.CLOSING:
                        # refused by a server closing the connection: not sent
                        rest = list(unit[i + 1 :])
                        if delivery_id in once:
                            report(Outcome().fail([delivery_id], refused))
                        else:
                            once.add(delivery_id)
                            rest.insert(0, unit[i])
                        raise pipelining.Ended(exc, rest) from exc
                    outcome = Outcome().fail([delivery_id], refused)
                    if isinstance(exc, smtplib.SMTPRecipientsRefused):
                        outcome.refuse(delivery_id, *next(iter(exc.recipients.values())))
                    report(outcome)
                    if isinstance(exc, smtplib.SMTPRecipientsRefused):
                        continue
                    # A refused message leaves the connection usable; reset the transaction.
                    try:
                        smtp.rset()
                    except (OSError, smtplib.SMTPException) as reset_exc:
                        raise pipelining.Ended(reset_exc, list(unit[i + 1 :])) from reset_exc
                except UnicodeError as exc:
                    report(Outcome().fail([delivery_id], failure(exc)))
                except (OSError, smtplib.SMTPException) as exc:
                    # `sendmail` may have written the content: this one is in doubt
                    reason = SendFailure(f"{type(exc).__name__}: {exc}", permanent=False)
                    report(Outcome().fail([delivery_id], reason))
                    raise pipelining.Ended(exc, list(unit[i + 1 :])) from exc

    def close(self) -> None:
        """End the connection at once, without a QUIT: the server is closing it."""
        connection, self.backend.connection = self.backend.connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    def _lost(self, unit: Batch, report: Report, exc: BaseException) -> None:
        """No connection can be had: these messages go again later. This transport
        stops; the others of the chunk go on with the rest."""
        self.close()
        if unit:
            reason = SendFailure(f"{type(exc).__name__}: {exc}", permanent=False)
            report(Outcome().fail([i for i, _ in unit], reason))


def _code(exc: smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused) -> int:
    """The reply code of a refusal."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return next(iter(exc.recipients.values()))[0]
    return exc.smtp_code


def _first_then(unit: list, take: Take) -> Take:
    """`take`, giving `unit` first (if any)."""
    first = [unit] if unit else []
    return lambda block: first.pop() if first else take(block)
