"""Plain SMTP: raw bytes over one connection opened by Django's SMTP backend, one
transaction per recipient; PIPELINING (see `pipelining`) where the server offers it."""

from __future__ import annotations

import contextlib
import smtplib
from email.utils import format_datetime

from django.core.mail import get_connection
from django.utils import timezone

from delivery.rendering import RenderedIssue
from delivery.transports import pipelining
from delivery.transports.base import Batch, Outcome, _error
from delivery.transports.pipelining import _envelope_address, _refusal, _smtp_reason


class SmtpTransport:
    """Raw bytes over one SMTP connection opened by Django's SMTP backend (so TLS and
    authentication settings apply), one transaction per recipient."""

    record_every = 100  # messages sent before their rows are recorded

    def __init__(self) -> None:
        self.backend = get_connection()

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        # closing a broken connection may fail too
        with contextlib.suppress(Exception):
            self.backend.close()

    def send(self, rendered: RenderedIssue, batch: Batch) -> Outcome:
        outcome = Outcome()
        date = format_datetime(timezone.now())
        pending = list(batch)
        try:
            if self.backend.connection is None:
                self.backend.open()
        except (OSError, smtplib.SMTPException) as exc:
            outcome.retry.update((i, _error(exc)) for i, _ in pending)
            return outcome
        smtp = self.backend.connection
        try:
            smtp.ehlo_or_helo_if_needed()
        except (OSError, smtplib.SMTPException) as exc:
            return self._lost(outcome, [i for i, _ in pending], exc)
        if smtp.does_esmtp and smtp.has_extn("pipelining"):
            pipelining.send(self, smtp, rendered, pending, date, outcome)
            return outcome
        while pending:
            delivery_id, recipient = pending.pop(0)
            try:
                rcpt = _envelope_address(recipient.email)
                smtp.sendmail(
                    rendered.envelope_from, [rcpt], rendered.as_bytes(recipient, date=date)
                )
                outcome.sent[delivery_id] = ""
            except smtplib.SMTPRecipientsRefused as exc:
                code, message = next(iter(exc.recipients.values()))
                bucket = outcome.failed if code >= 500 else outcome.retry
                bucket[delivery_id] = _smtp_reason(code, message)
            except smtplib.SMTPResponseException as exc:
                # A refused message leaves the connection usable; reset the transaction.
                ours = isinstance(exc, smtplib.SMTPSenderRefused)
                _refusal(outcome, delivery_id, exc.smtp_code, exc.smtp_error, ours=ours)
                try:
                    smtp.rset()
                except (OSError, smtplib.SMTPException) as reset_exc:
                    return self._lost(outcome, [i for i, _ in pending], reset_exc)
            except UnicodeError as exc:
                outcome.failed[delivery_id] = f"Address cannot be sent to: {exc}"
            except (OSError, smtplib.SMTPException) as exc:
                # The connection is gone: this one and the rest of the chunk go again later.
                return self._lost(outcome, [delivery_id, *(i for i, _ in pending)], exc)
        return outcome

    def _lost(self, outcome: Outcome, ids: list[int], exc: BaseException) -> Outcome:
        """The connection is gone: these messages go again later, over a new one."""
        outcome.retry.update((i, _error(exc)) for i in ids)
        self.backend.connection = None
        return outcome
