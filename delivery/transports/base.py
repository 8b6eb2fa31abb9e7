"""What every transport is: a connection (SMTP) or an API session (ESP) that takes the
messages of a chunk a unit at a time and reports each recipient's outcome, sent (with
the ESP's message id, if any) or failed, permanently or not (`monitor_site.retry`).

A worker process keeps up to `lanes` transports of one kind working at once (see
`delivery.lanes`), and records outcomes at least every `step` messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from delivery.rendering import Recipient, RenderedIssue
from monitor_site.retry import SendFailure

Batch = Sequence[tuple[int, Recipient]]
# The next unit of work, waiting for one or not (`block`); None when there is none
# (for now, or any more once the chunk is handed out).
Take = Callable[[bool], "Batch | None"]


@dataclass
class Outcome:
    sent: dict[int, str] = field(default_factory=dict)  # delivery id -> ESP message id
    retry: dict[int, str] = field(default_factory=dict)  # delivery id -> error
    failed: dict[int, str] = field(default_factory=dict)  # delivery id -> reason
    # of the failed, those whose recipient the server refused for good at RCPT (5xx)
    refused: dict[int, str] = field(default_factory=dict)  # delivery id -> the reply

    def __len__(self) -> int:
        return len(self.sent) + len(self.retry) + len(self.failed)

    def merge(self, other: Outcome) -> None:
        self.sent.update(other.sent)
        self.retry.update(other.retry)
        self.failed.update(other.failed)
        self.refused.update(other.refused)

    def fail(self, ids: Sequence[int], failure: SendFailure) -> Outcome:
        """File these rows as failed for good or to be tried again, as `failure` says."""
        bucket = self.failed if failure.permanent else self.retry
        bucket.update((i, failure.reason) for i in ids)
        return self

    def refuse(self, delivery_id: int, code: int, reply: bytes | str) -> Outcome:
        """Note a refusal at RCPT of a row already failed: a 5xx may be a bounce of the
        address (`delivery.policy.refusals_record` decides), anything else is not."""
        if 500 <= code < 600:
            if isinstance(reply, bytes):
                reply = reply.decode("utf-8", "replace")
            self.refused[delivery_id] = f"SMTP {code} {reply}"[:1000]
        return self


Report = Callable[[Outcome], None]


class Transport:
    lanes = 1  # transports of this kind working at once in one worker process
    step = 100  # messages handed out at a time (the send's state is read before each)

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def units(self, batch: Batch) -> list[Batch]:
        """How a chunk's messages are cut for `send`: one message at a time."""
        return [[item] for item in batch]

    def send(self, rendered: RenderedIssue, batch: Batch) -> Outcome:
        raise NotImplementedError

    def send_from(self, rendered: RenderedIssue, take: Take, report: Report) -> None:
        """Send units until there are no more, reporting each one's outcome."""
        while (unit := take(True)) is not None:
            report(self.send(rendered, unit))
