"""Whether a message that did not go out is tried again, and after how long: one rule for
the issues Celery delivers and for transactional mail.

* Transient, tried again: an SMTP 4xx reply, a refusal of our own sender (our
  configuration, not the reader's address), a lost or refused connection, an ESP that
  answers 429 or 5xx or does not answer, any other error of the mail system.
* Permanent, recorded with the reason: any other SMTP 5xx, an ESP's other 4xx, an ESP
  that refuses the recipients, an address that cannot be written in an SMTP envelope.
* The wait doubles with each attempt from DELIVERY_RETRY_BASE_SECONDS up to
  DELIVERY_RETRY_MAX_SECONDS, give or take a quarter, so that the retries of one send
  do not all come back at the same moment.
"""

from __future__ import annotations

import random
import smtplib

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.conf import settings


class SendFailure(Exception):
    """A message (or a batch call) that did not go out: why, and whether for good."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason[:1000]
        self.permanent = permanent


def smtp_failure(code: int, reply: bytes | str, *, ours: bool = False) -> SendFailure:
    """A reply refusing a message; `ours`: it refused our sender."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return SendFailure(f"SMTP {code} {reply}", permanent=500 <= code < 600 and not ours)


def failure(exc: BaseException) -> SendFailure:
    """The failure an exception of smtplib, anymail or the network stands for."""
    if isinstance(exc, SendFailure):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return smtp_failure(code, reply)
    if isinstance(exc, smtplib.SMTPResponseException):
        ours = isinstance(exc, smtplib.SMTPSenderRefused)
        return smtp_failure(exc.smtp_code, exc.smtp_error, ours=ours)
    described = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, UnicodeError):
        return SendFailure(f"Address cannot be sent to: {exc}", permanent=True)
    if isinstance(exc, AnymailRecipientsRefused):
        return SendFailure(described, permanent=True)
    if isinstance(exc, AnymailAPIError):
        status = getattr(exc, "status_code", None)
        transient = status is None or status == 429 or status >= 500
        return SendFailure(described, permanent=not transient)
    return SendFailure(described, permanent=False)


def backoff(attempt: int) -> float:
    """Seconds to wait before trying again after the `attempt`-th try (1 for the first)."""
    delay = settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1)
    return min(delay, settings.DELIVERY_RETRY_MAX_SECONDS) * random.uniform(0.75, 1.25)
