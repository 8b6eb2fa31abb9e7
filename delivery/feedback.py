"""ESP feedback: anymail tracking events recorded against their deliveries, and what they
mean for the address.

Rules kept here:
* Each event is stored once, keyed by the ESP's event id (or a fingerprint of the event
  when the ESP gives none); a replay finds the key taken and changes nothing.
* Side effects belong to the first insert only, in the same transaction: either the
  event and its consequences are stored together, or neither is and the ESP retries.
* Hard bounces, rejects of bad recipients and complaints put the address on the
  suppression list (which ends its subscriptions as bounced or complained); an ESP-side
  unsubscribe ends them as unsubscribed.
* Only an event about mail we sent changes anything: one that matches a delivery (by
  our delivery id in its metadata, by the ESP message id we recorded, or as the latest
  delivery sent to the address). Any other event, such as a bounce for an address we
  never mailed, is stored for the record and changes nothing.
* What a failure means for the address is `delivery.policy`'s rule, shared with the
  bounce mailbox: transient failures are recorded only, until the address has failed
  transiently for TRANSIENT_LIMIT different issues in a row; then it is suppressed as
  bounced. Nothing ever lifts a suppression: a late `delivered` or `opened` is just
  recorded. Nor does an event older than staff's latest lift of the address's
  suppression put it back (a late copy of the bounce they already weighed).
* A click's URL is kept only if it is http or https; the event is stored either way.
* An open or click is a machine's (`machine`), counted apart from people's, when the ESP
  says so (SendGrid's `sg_machine_open`, Mailgun's `client-info.bot`, Brevo's proxy
  opens) or when the user agent is that of a privacy proxy or a scanner
  (`is_machine`).

Everything runs inside the webhook request: a handful of indexed queries per event, and
the suppression is durable the moment the ESP gets its 200.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from anymail.signals import AnymailTrackingEvent, RejectReason
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from delivery import policy
from delivery.models import Delivery, DeliveryEvent, MessageId
from issues.models import Issue
from subscriptions import services as subscriptions
from subscriptions.models import Suppression

log = logging.getLogger(__name__)

Kind = DeliveryEvent.Kind
Reason = Suppression.Reason

# Our sent_at is written after the ESP accepted the batch; its event clock may be a
# little earlier than that.
CLOCK_SLACK = timedelta(minutes=10)

# Rejects caused by the recipient, and the suppression each becomes. Other reasons
# (timed out, other, none) say nothing certain about the address: recorded only.
REJECT_SUPPRESSES = {
    RejectReason.INVALID: Reason.INVALID,
    RejectReason.BLOCKED: Reason.BLOCKED,
    RejectReason.BOUNCED: Reason.BOUNCED,
    RejectReason.SPAM: Reason.COMPLAINED,
    RejectReason.UNSUBSCRIBED: Reason.UNSUBSCRIBED,
}
# Bounces that anymail reports as `bounced` although the ESP calls them temporary.
_SOFT_BOUNCE_TYPES = {
    "Type": {"SoftBounce", "Transient", "DnsError"},  # Postmark
    "bounceType": {"Transient", "Undetermined"},  # Amazon SES (inside "bounce")
}
# Rejects of the message, not of the recipient: suppressing the address would be wrong.
_MESSAGE_REJECTS = {
    ("Type", "DMARCPolicy"),  # Postmark: our own domain's DMARC policy
    ("eventType", "Reject"),  # Amazon SES: a virus in the message
}


@dataclass(frozen=True)
class Recorded:
    event: DeliveryEvent
    created: bool
    suppressed: str | None = None  # the suppression reason this event applied


def _raw(event: AnymailTrackingEvent) -> Mapping[str, Any]:
    return event.esp_event if isinstance(event.esp_event, Mapping) else {}


def _is_soft_bounce(event: AnymailTrackingEvent) -> bool:
    raw = _raw(event)
    if raw.get("Type") in _SOFT_BOUNCE_TYPES["Type"]:
        return True
    bounce = raw.get("bounce")
    if isinstance(bounce, Mapping) and bounce.get("bounceType") in _SOFT_BOUNCE_TYPES["bounceType"]:
        return True
    # A bounce the ESP does not put on the address (virus, gave up after retries, ...).
    return event.reject_reason not in (None, RejectReason.BOUNCED, RejectReason.INVALID)


def event_kind(event: AnymailTrackingEvent) -> str:
    """Anymail's event type as stored; soft bounces are stored as deferrals."""
    kind = event.event_type if event.event_type in Kind.values else Kind.UNKNOWN
    if kind == Kind.BOUNCED and _is_soft_bounce(event):
        return Kind.DEFERRED
    return kind


def suppression_reason(kind: str, event: AnymailTrackingEvent) -> str | None:
    """The suppression this event calls for by itself, or None."""
    if kind == Kind.BOUNCED:
        return Reason.INVALID if event.reject_reason == RejectReason.INVALID else Reason.BOUNCED
    if kind == Kind.COMPLAINED:
        return Reason.COMPLAINED
    if kind == Kind.UNSUBSCRIBED:
        return Reason.UNSUBSCRIBED
    if kind == Kind.REJECTED:
        raw = _raw(event)
        if any(raw.get(field) == value for field, value in _MESSAGE_REJECTS):
            return None
        return REJECT_SUPPRESSES.get(event.reject_reason)
    return None


def event_key(*, esp: str, event: AnymailTrackingEvent, email: str) -> str:
    """The ESP's event id (one SES notification covers several recipients, hence the
    address), or a fingerprint of what the event says when it has no id."""
    if event.event_id:
        key = f"{esp}:{event.event_id}:{email}"
        if len(key) <= 200:
            return key
        parts = ["id", esp, str(event.event_id), email]
    else:
        stamp = event.timestamp.isoformat() if event.timestamp else ""
        parts = ["fp", esp, str(event.event_type), email, stamp, str(event.message_id or "")]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"{esp[:40]}:{parts[0]}:{digest}"


def _message_ids(message_id: str) -> set[str]:
    # Mailgun's webhook adds <angle brackets>; its send response may or may not have them.
    bare = message_id.strip().strip("<>")
    return {message_id, bare, f"<{bare}>"}


def delivery_find(
    *, metadata: Mapping[str, Any], message_id: str | None, email: str, at: datetime
) -> Delivery | None:
    """The delivery an event is about: by the delivery id we sent as metadata, then by the
    ESP's message id, then the latest delivery sent to the address before the event."""
    deliveries = Delivery.objects.only("id", "issue_id", "email")
    raw_id = str(metadata.get("delivery_id", "") if isinstance(metadata, Mapping) else "")
    if raw_id.isdigit():
        found = deliveries.filter(pk=int(raw_id)).first()
        if found is not None and (not email or found.email.lower() == email):
            return found
    if message_id:
        known = MessageId.objects.filter(esp_message_id__in=_message_ids(str(message_id)))
        candidates = deliveries.filter(
            pk__in=known.filter(delivery__isnull=False).values("delivery")
        )
        if email:
            candidates = candidates.filter(email=email)
        found_list = list(candidates[:2])
        if len(found_list) == 1:
            return found_list[0]
        # A batch shares one message id: without an address it names no single delivery.
        if email:
            batches = known.filter(delivery__isnull=True).values("issue")
            found = (
                deliveries.alias(address=Lower("subscriber__email"))
                .filter(address=email, issue__in=batches)
                .order_by("-id")
                .first()
            )
            if found is not None:
                return found
    if email:
        # Through the subscriber's unique lower(email) index.
        return (
            deliveries.alias(address=Lower("subscriber__email"))
            .filter(address=email, sent_at__isnull=False, sent_at__lte=at + CLOCK_SLACK)
            .order_by("-sent_at", "-id")
            .first()
        )
    return None


def _known_issue_id(metadata: Mapping[str, Any]) -> int | None:
    raw = str(metadata.get("issue_id", "") if isinstance(metadata, Mapping) else "")
    if raw.isdigit() and Issue.objects.filter(pk=int(raw)).exists():
        return int(raw)
    return None


# Brevo's names for opens through a privacy proxy (anymail reports them as `opened`).
_PROXY_OPENS = {"proxy_open", "unique_proxy_open"}
# User agents of fetches no person asked for: Apple Mail Privacy Protection's proxy
# sends exactly "Mozilla/5.0"; crawlers ("Somebot/2.1") and the link scanners of mail
# filters name themselves.
_MACHINE_AGENTS = {"mozilla/5.0"}
_SCANNER_WORDS = ("bot/", "bot;", "crawler", "spider", "scanner", "barracuda", "mimecast")


def is_machine(kind: str, event: AnymailTrackingEvent) -> bool:
    """Whether an open or click was a machine's rather than a reader's."""
    if kind not in (Kind.OPENED, Kind.CLICKED):
        return False
    raw = _raw(event)
    if raw.get("sg_machine_open") is True or raw.get("event") in _PROXY_OPENS:
        return True
    data = raw.get("event-data")
    info = data.get("client-info") if isinstance(data, Mapping) else None
    if isinstance(info, Mapping) and info.get("bot"):
        return True
    agent = " ".join(str(event.user_agent or "").split()).lower()
    return agent in _MACHINE_AGENTS or any(word in agent for word in _SCANNER_WORDS)


def click_url(event: AnymailTrackingEvent) -> str:
    """The clicked URL if it is a web address: anything else (javascript:, data:) would
    become a live link in the admin."""
    url = str(event.click_url or "")[:2000]
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return ""
    return url if scheme in ("http", "https") else ""


def event_record(*, esp: str, event: AnymailTrackingEvent) -> Recorded:
    """Store one tracking event against its delivery and apply what it means for the
    address. Idempotent: a replay (same key) returns the stored event and changes
    nothing. Database errors propagate, so that the webhook answers 5xx and the ESP
    sends the event again."""
    email = subscriptions.normalize_email(event.recipient or "")[:254]
    at = event.timestamp or timezone.now()
    kind = event_kind(event)
    metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
    message_id = str(event.message_id or "")[:200]
    with transaction.atomic():
        delivery = delivery_find(metadata=metadata, message_id=message_id, email=email, at=at)
        if delivery is not None and not email:
            email = delivery.email.lower()
        record, created = DeliveryEvent.objects.get_or_create(
            key=event_key(esp=esp, event=event, email=email),
            defaults={
                "delivery": delivery,
                "issue_id": delivery.issue_id if delivery else _known_issue_id(metadata),
                "esp": esp[:40],
                "kind": kind,
                "email": email,
                "esp_message_id": message_id,
                "reject_reason": str(event.reject_reason or "")[:40],
                "description": "\n".join(
                    str(part) for part in (event.description, event.mta_response) if part
                ),
                "url": click_url(event),
                "machine": is_machine(kind, event),
                "occurred_at": at,
            },
        )
        if not created:
            return Recorded(record, created=False)
        reason = None
        if delivery is not None:
            reason = policy.suppression_due(
                reason=suppression_reason(kind, event),
                transient=kind == Kind.DEFERRED,
                email=email,
                at=at,
            )
        if reason is None:
            return Recorded(record, created=True)
        source = f"{esp} webhook: {kind}" + (
            f" ({event.reject_reason})" if event.reject_reason else ""
        )
        policy.suppress(email=email, reason=reason, source=source)
    return Recorded(record, created=True, suppressed=reason)
