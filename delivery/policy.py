"""What a failure to deliver means for the address: one rule for the ESP's webhooks
(`feedback`), the bounce mailbox (`bounces`) and the SMTP relay's refusals at send time.

* A permanent failure (an ESP's hard bounce or reject of the recipient, a delivery
  report with a 5.x.x status, a 5xx reply to RCPT that refuses the recipient's address,
  not our sender or the message) suppresses the address at once; the suppression ends
  its subscriptions.
* A temporary failure (an ESP's soft bounce, a report with a 4.x.x status, or with a
  5.x.x one about the message or the sending side: 5.3, 5.6, 5.7) suppresses it once the
  address has failed temporarily for TRANSIENT_LIMIT different issues in a row, with
  nothing received (delivered, opened, clicked) in between.
* Only failures about a delivery of ours count; nothing here lifts a suppression, and a
  failure older than staff's latest lift of the address's suppression changes nothing
  (the run of temporary failures starts again at the lift).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from delivery.models import Delivery, DeliveryEvent
from subscriptions import services as subscriptions
from subscriptions.models import Suppression

log = logging.getLogger(__name__)

Kind = DeliveryEvent.Kind
Reason = Suppression.Reason

TRANSIENT_LIMIT = 3
# Proof that the address takes mail: ends a run of transient failures.
RECEIVED = (Kind.DELIVERED, Kind.OPENED, Kind.CLICKED)
# How far back the run of transient failures is looked for (events, newest first).
TRANSIENT_WINDOW = 50


def transient_run(*, email: str, since: datetime | None = None) -> int:
    """How many different issues (or messages) failed transiently for this address since
    it last received something (and since `since`), counting events about our deliveries."""
    rows = DeliveryEvent.objects.filter(email=email, delivery__isnull=False)
    if since is not None:
        rows = rows.filter(occurred_at__gte=since)
    rows = rows.order_by("-occurred_at", "-id").values_list(
        "kind", "issue_id", "esp_message_id", "pk"
    )[:TRANSIENT_WINDOW]
    failed: set[tuple[str, object]] = set()
    for kind, issue_id, message_id, pk in rows:
        if kind in RECEIVED:
            break
        if kind == Kind.DEFERRED:
            if issue_id is not None:
                failed.add(("issue", issue_id))
            elif message_id:
                failed.add(("message", message_id))
            else:
                failed.add(("event", pk))
    return len(failed)


def last_lift(*, email: str) -> datetime | None:
    """When staff last lifted a suppression of this address, if ever."""
    lifted = Suppression.objects.matching(email).filter(lifted_at__isnull=False)
    return lifted.aggregate(at=Max("lifted_at"))["at"]


def _valid_email(email: str) -> bool:
    try:
        validate_email(email)
    except ValidationError:
        return False
    return True


def suppression_due(*, reason: str | None, transient: bool, email: str, at: datetime) -> str | None:
    """The suppression a newly stored event about one of our deliveries applies, or None:
    `reason`, what the event calls for by itself; else, for a `transient` failure, the
    end of a run of them. Never for an event older than staff's latest lift."""
    if not _valid_email(email):
        return None
    if reason is None and not transient:
        return None
    lifted = last_lift(email=email)
    if lifted is not None and at < lifted:
        return None
    if reason is None and transient_run(email=email, since=lifted) >= TRANSIENT_LIMIT:
        return Reason.BOUNCED
    return reason


def suppress(*, email: str, reason: str, source: str) -> None:
    """Put the address on the suppression list (its subscriptions end)."""
    subscriptions.suppression_add(email=email, reason=reason, source=source)
    log.info("%s: %s suppressed as %s", source, email, reason)


def failure_record(
    *,
    delivery: Delivery,
    key: str,
    permanent: bool,
    source: str,
    description: str,
    at: datetime,
    message_id: str = "",
) -> tuple[DeliveryEvent, bool, str | None]:
    """Store a failure reported outside an ESP (`source`: "smtp" for the relay's refusal
    at send time, "bounce" for a delivery report) as an event of `delivery`, once per
    `key`, and apply the rule above: a permanent one is a `bounced` event, a temporary
    one a `deferred` event. Returns the event, whether it is new, and the suppression
    applied. A second call with the same key changes nothing."""
    email = subscriptions.normalize_email(delivery.email)
    kind = Kind.BOUNCED if permanent else Kind.DEFERRED
    with transaction.atomic():
        event, created = DeliveryEvent.objects.get_or_create(
            key=key[:200],
            defaults={
                "delivery": delivery,
                "issue_id": delivery.issue_id,
                "esp": source[:40],
                "kind": kind,
                "email": email,
                "esp_message_id": message_id[:200],
                "reject_reason": "bounced" if permanent else "",
                "description": description[:4000],
                "occurred_at": at,
            },
        )
        if not created:
            return event, False, None
        reason = suppression_due(
            reason=Reason.BOUNCED if permanent else None,
            transient=not permanent,
            email=email,
            at=at,
        )
        if reason is not None:
            suppress(email=email, reason=reason, source=f"{source}: {kind}")
    return event, True, reason


# RFC 3463 statuses that say the recipient's address is bad: no such mailbox (5.1.1), no
# such system (5.1.2), bad syntax (5.1.3), moved (5.1.6), no mail accepted (5.1.10, null
# MX), mailbox disabled (5.2.1). Any other (a policy block 5.7.x, a relay denied, a
# sender refused at RCPT by a server that delays its sender checks) is about the message
# or about us, and must not suppress a reader: misconfigured once, it would suppress them
# all.
_RECIPIENT_STATUSES = {"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"}
_ENHANCED = re.compile(r"^SMTP 5\d\d[ -]([245]\.\d{1,3}\.\d{1,3})\b")
_NOT_THE_RECIPIENT = re.compile(r"sender|relay|spam|policy|blocked|blacklist", re.IGNORECASE)


# RFC 3463 subjects of 5.x.x statuses about the message or the sending side rather than
# the address: 5.3.x the receiving system (message too big), 5.6.x the content, 5.7.x
# security and policy (authentication required, relaying denied, spam, DMARC). Our own
# relay misconfigured answers every message so; such a failure counts as temporary.
_NOT_ABOUT_THE_ADDRESS = ("5.3.", "5.6.", "5.7.")


def report_is_permanent(status: str) -> bool:
    """Whether a delivery report's `Action: failed` with this status ("5.1.1", "4.2.2", ""
    when it gives none) is a permanent failure of the address: a 5.x.x status other than
    those about the message or the sending side."""
    if status.startswith("4."):
        return False
    return not status.startswith(_NOT_ABOUT_THE_ADDRESS)


def refuses_recipient(reply: str) -> bool:
    """Whether a 5xx reply to RCPT ("SMTP 550 5.1.1 ...") refuses the recipient's address
    itself, by its enhanced status code, or, without one, by a 550, 551 or 553 that names
    neither our sender, relaying nor a policy."""
    enhanced = _ENHANCED.match(reply)
    if enhanced:
        return enhanced.group(1) in _RECIPIENT_STATUSES
    return reply[:8] in ("SMTP 550", "SMTP 551", "SMTP 553") and not _NOT_THE_RECIPIENT.search(
        reply
    )


def refusals_record(*, refused: dict[int, str]) -> int:
    """The relay's 5xx refusals at RCPT (delivery id -> its reply) that refuse the
    recipient's address (`refuses_recipient`), each a permanent failure of that delivery,
    once. Returns how many addresses it suppressed."""
    refused = {i: reply for i, reply in refused.items() if refuses_recipient(reply)}
    if not refused:
        return 0
    at = timezone.now()
    suppressed = 0
    for delivery in Delivery.objects.filter(id__in=refused).only("id", "issue_id", "email"):
        _, _, reason = failure_record(
            delivery=delivery,
            key=f"smtp:rcpt:{delivery.pk}",
            permanent=True,
            source="smtp",
            description=f"Refused at RCPT: {refused[delivery.pk]}",
            at=at,
        )
        suppressed += reason is not None
    return suppressed
