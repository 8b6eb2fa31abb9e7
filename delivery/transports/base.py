"""What every transport gives back: the outcome of each recipient of what it was handed.

Sent (with the ESP's message id, if any), to be retried (transient: SMTP 4xx, connection
errors, ESP 429 and 5xx) or failed for good (permanent rejects), with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from delivery.rendering import Recipient


@dataclass
class Outcome:
    sent: dict[int, str] = field(default_factory=dict)  # delivery id -> ESP message id
    retry: dict[int, str] = field(default_factory=dict)  # delivery id -> error
    failed: dict[int, str] = field(default_factory=dict)  # delivery id -> reason

    def merge(self, other: Outcome) -> None:
        self.sent.update(other.sent)
        self.retry.update(other.retry)
        self.failed.update(other.failed)


Batch = Sequence[tuple[int, Recipient]]


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
