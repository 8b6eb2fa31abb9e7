"""An ESP through django-anymail: one batch call per chunk where the ESP fills merge
tags in content sent with the message, else one call per recipient. Only anymail's
documented batch interface: `merge_data` (the recipient's fields the templates use),
`merge_headers` (List-Unsubscribe, Message-ID), `merge_metadata` (the delivery id, which
comes back in the ESP's tracking events). Batches are cut at each ESP's documented
limit: anymail does not split long lists."""

from __future__ import annotations

import threading
import time

from anymail.exceptions import AnymailError
from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import get_connection

from delivery.rendering import Recipient, RenderedIssue
from delivery.transports.base import Batch, Outcome, Transport
from monitor_site.retry import failure

# ESPs whose batch API fills merge tags in content we send with the message, and how
# each spells a tag. Others get one fully rendered message per recipient, as do
# Mandrill and Unisender Go: anymail refuses per-recipient headers (List-Unsubscribe,
# Message-ID) in their batches.
MERGE_TAGS = {
    "mailgun": "%%recipient.%s%%",
    "sparkpost": "{{%s}}",
    "brevo": "{{params.%s}}",
    "test": "{{%s}}",
}
# Recipients per API call, as each ESP documents it; anymail does not split long lists.
ESP_BATCH_LIMITS = {
    "mailgun": 1000,
    "sendgrid": 1000,
    "postmark": 500,
    "unisender_go": 500,
    "resend": 100,
}
ESP_BATCH_LIMIT = 500  # any other ESP
# ESPs that take open and click tracking per message (anymail's track_opens and
# track_clicks); the others (Amazon SES, Brevo, Resend, ...) are set up in their own
# control panel only, and anymail refuses the options.
ESP_TRACKING_OPTIONS = {
    "mailersend",
    "mailgun",
    "mailjet",
    "mandrill",
    "postmark",
    "sendgrid",
    "sparkpost",
    "unisender_go",
    "test",
}


class Starts:
    """When the calls of one worker process may start. Building a batch call is CPU
    (anymail parses every address and urlencodes a form of about 650 KB: some 60 ms for
    1,000 recipients) and its answer is a wait (100 to 300 ms). Calls that start
    together build together, holding one GIL, then all wait while the CPU idles;
    started a build apart, one call builds while the others wait for their answers.
    The build's length is learned from the CPU time the calls take (`time.thread_time`,
    which counts no waiting)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0.0  # time.monotonic() at which the next call may start
        self.build = 0.0  # seconds of CPU a call takes, a running average

    def wait_turn(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.build
        if start > now:
            time.sleep(start - now)

    def took(self, cpu: float) -> None:
        with self._lock:
            self.build = cpu if not self.build else 0.8 * self.build + 0.2 * cpu


starts = Starts()


class AnymailTransport(Transport):
    """One anymail backend (one HTTP session); a worker process keeps up to
    DELIVERY_ESP_CALLS of them calling the ESP at once."""

    def __init__(self, esp: str) -> None:
        self.tag = MERGE_TAGS.get(esp)
        self.tracking_options = esp in ESP_TRACKING_OPTIONS
        self.limit = ESP_BATCH_LIMITS.get(esp, ESP_BATCH_LIMIT)
        # a batch call goes whole or not at all: its rows are recorded together
        self.step = self.limit if self.tag else Transport.step
        self.lanes = settings.DELIVERY_ESP_CALLS
        self.backend = get_connection()

    def __enter__(self) -> AnymailTransport:
        self.backend.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.backend.close()

    def _message(self, rendered: RenderedIssue, *, text: str, html: str | None, to: list[str]):
        message = AnymailMessage(
            subject=rendered.subject_line,
            body=text,
            from_email=rendered.from_email,
            to=to,
            reply_to=rendered.reply_to,
            headers={
                "List-Id": rendered.list_id,
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            connection=self.backend,
        )
        if html is not None:
            message.attach_alternative(html, "text/html")
        message.tags = [rendered.publication.slug]
        message.metadata = {"issue_id": str(rendered.issue.pk)}
        if self.tracking_options:  # the publication's choice; the ESP's default may differ
            message.track_opens = rendered.publication.track_opens
            message.track_clicks = rendered.publication.track_clicks
        return message

    @staticmethod
    def _per_recipient_headers(rendered: RenderedIssue, recipient: Recipient) -> dict[str, str]:
        return {
            "List-Unsubscribe": f"<{recipient.unsubscribe_url}>",
            "Message-ID": rendered.message_id(recipient),
        }

    def units(self, batch: Batch) -> list[Batch]:
        """One batch call per format and up to the ESP's limit, or one call a recipient."""
        if self.tag is None:
            return super().units(batch)
        units = []
        for fmt in ("html", "text"):
            group = [item for item in batch if item[1].format == fmt]
            units += (group[i : i + self.limit] for i in range(0, len(group), self.limit))
        return units

    def send(self, rendered: RenderedIssue, batch: Batch) -> Outcome:
        outcome = Outcome()
        for unit in self.units(batch):
            if self.tag is None:
                outcome.merge(self._send_one(rendered, unit[0]))
            else:
                outcome.merge(self._send_batch(rendered, unit))
        return outcome

    def _send_batch(self, rendered: RenderedIssue, batch: Batch) -> Outcome:
        by_email = {recipient.email: (delivery_id, recipient) for delivery_id, recipient in batch}
        html = rendered.html.with_tags(self.tag) if batch[0][1].format == "html" else None
        message = self._message(
            rendered, text=rendered.text.with_tags(self.tag), html=html, to=list(by_email)
        )
        merge_data, merge_headers, merge_metadata = {}, {}, {}
        headers = self._per_recipient_headers
        fields = rendered.fields  # only what the templates use
        for email, (delivery_id, r) in by_email.items():
            merge_data[email] = {field: getattr(r, field) for field in fields}
            merge_headers[email] = headers(rendered, r)
            merge_metadata[email] = {"delivery_id": str(delivery_id)}
        message.merge_data = merge_data
        message.merge_headers = merge_headers
        message.merge_metadata = merge_metadata
        return self._deliver(message, by_email)

    def _send_one(self, rendered: RenderedIssue, item: tuple[int, Recipient]) -> Outcome:
        delivery_id, recipient = item
        html = rendered.html.fill(recipient) if recipient.format == "html" else None
        message = self._message(
            rendered, text=rendered.text.fill(recipient), html=html, to=[recipient.email]
        )
        message.extra_headers.update(self._per_recipient_headers(rendered, recipient))
        message.metadata["delivery_id"] = str(delivery_id)
        return self._deliver(message, {recipient.email: item})

    def _deliver(
        self, message: AnymailMessage, by_email: dict[str, tuple[int, Recipient]]
    ) -> Outcome:
        outcome = Outcome()
        ids = [delivery_id for delivery_id, _ in by_email.values()]
        starts.wait_turn()
        cpu = time.thread_time()
        try:
            message.send()
        except (AnymailError, OSError) as exc:
            return outcome.fail(ids, failure(exc))
        finally:
            starts.took(time.thread_time() - cpu)
        statuses = message.anymail_status.recipients
        for email, (delivery_id, _) in by_email.items():
            status = statuses.get(email)
            if status is None or status.status in {"sent", "queued", "unknown"}:
                message_id = status.message_id if status else None
                outcome.sent[delivery_id] = "" if message_id is None else str(message_id)
            elif status.status in {"rejected", "invalid"}:
                outcome.failed[delivery_id] = f"ESP {status.status}"
            else:
                outcome.retry[delivery_id] = f"ESP {status.status}"
        return outcome
