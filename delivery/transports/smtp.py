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


class SmtpTransport(Transport):
    def __init__(self) -> None:
        self.backend = get_connection()
        self.lanes = settings.DELIVERY_SMTP_CONNECTIONS

    def __exit__(self, *exc: object) -> None:
        # closing a broken connection may fail too
        with contextlib.suppress(Exception):
            self.backend.close()

    def units(self, batch: Batch) -> list[Batch]:
        """A few messages at a time, fewer where the chunk is small: each connection
        keeps pipelining from one unit into the next, and the last units of a chunk
        are spread over the connections."""
        size = max(1, min(UNIT, len(batch) // (self.lanes * UNIT)))
        return [batch[i : i + size] for i in range(0, len(batch), size)]

    def send(self, rendered: RenderedIssue, batch: Batch) -> Outcome:
        outcome, items = Outcome(), list(batch)
        self.send_from(rendered, lambda block: [items.pop(0)] if items else None, outcome.merge)
        return outcome

    def send_from(self, rendered: RenderedIssue, take: Take, report: Report) -> None:
        date = format_datetime(timezone.now())
        unit = take(True)
        if unit is None:
            return
        try:
            if self.backend.connection is None:
                self.backend.open()
            smtp = self.backend.connection
            smtp.ehlo_or_helo_if_needed()
        except (OSError, smtplib.SMTPException) as exc:
            return self._lost(unit, report, exc)
        if smtp.does_esmtp and smtp.has_extn("pipelining"):
            first = [unit]
            lost = pipelining.send(
                smtp, rendered, lambda block: first.pop() if first else take(block), report, date
            )
            if lost is not None:
                self._lost([], report, lost)
            return None
        while unit is not None:
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
                    outcome = Outcome().fail([delivery_id], failure(exc))
                    if isinstance(exc, smtplib.SMTPRecipientsRefused):
                        outcome.refuse(delivery_id, *next(iter(exc.recipients.values())))
                    report(outcome)
                    if isinstance(exc, smtplib.SMTPRecipientsRefused):
                        continue
                    # A refused message leaves the connection usable; reset the transaction.
                    try:
                        smtp.rset()
                    except (OSError, smtplib.SMTPException) as reset_exc:
                        return self._lost(unit[i + 1 :], report, reset_exc)
                except UnicodeError as exc:
                    report(Outcome().fail([delivery_id], failure(exc)))
                except (OSError, smtplib.SMTPException) as exc:
                    return self._lost(unit[i:], report, exc)
            unit = take(True)

    def _lost(self, unit: Batch, report: Report, exc: BaseException) -> None:
        """The connection is gone: these messages go again later. This transport stops;
        the others of the chunk go on with the rest."""
        self.backend.connection = None
        if unit:
            reason = SendFailure(f"{type(exc).__name__}: {exc}", permanent=False)
            report(Outcome().fail([i for i, _ in unit], reason))
