"""Everything held about one reader, by their address, as one JSON document (GDPR
Art. 15; `manage.py reader_data EMAIL --json`, the subscriber's admin page).

A *reader* is an address (trimmed, lower-cased) and what is held about it: the
subscriber with that address, with their subscriptions, consent and history; an
offline reader's row that this address took over by joining with its code; the
suppression entries of the address (found by keyed hash, so an erased reader's entry
too); the contact messages sent from it; when confirmations last went to its mailbox;
and what other apps add through `reader_data_collected` (delivery: the issues mailed
to it and what the ESP reported). A join code typed with this address by someone who
has not confirmed it is shown only as that request, never with the offline reader's
details, which may be someone else's.

The layout is stable (`FORMAT`, `VERSION`; the README lists the keys); a new key may
be added, none renamed or removed without a new version. Every section is present,
empty when nothing is held; times are ISO 8601 in UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.db.models.functions import Lower
from django.dispatch import Signal
from django.utils import timezone

from subscriptions.mailbox import mailbox
from subscriptions.models import (
    ContactMessage,
    EmailCooldown,
    Subscriber,
    Subscription,
    Suppression,
)
from subscriptions.services import normalize_email

FORMAT = "monitor.reader-data"
VERSION = 1

# Sent with `reader=`; each receiver returns a dict of sections (name -> list of
# JSON-ready dicts) about that reader, which the document includes under those names.
reader_data_collected = Signal()


@dataclass(frozen=True)
class Reader:
    email: str
    # the subscriber with the address, and offline readers' rows it joined from
    subscriber_ids: tuple[int, ...]
    # offline readers whose code was typed with this address, not confirmed
    join_request_ids: tuple[int, ...]


def reader_find(*, email: str) -> Reader:
    """The reader of an address (which may hold nothing at all): one query."""
    email = normalize_email(email)
    rows = list(
        Subscriber.objects.alias(address=Lower("email"))
        .filter(Q(address=email) | Q(join_email=email))
        .values_list("pk", "email", "join_code")
    )
    mine = tuple(pk for pk, address, code in rows if address == email or code is None)
    requests = tuple(pk for pk, address, code in rows if pk not in mine)
    return Reader(email=email, subscriber_ids=mine, join_request_ids=requests)


def reader_data(*, email: str) -> dict[str, Any] | None:
    """The document for this address, or None when nothing at all is held about it."""
    reader = reader_find(email=email)
    sections = {
        "subscribers": _subscribers(reader),
        "join_requests": _join_requests(reader),
        "suppressions": _suppressions(reader),
        "contact_messages": _contact_messages(reader),
        "mailbox_cooldowns": _cooldowns(reader),
    }
    for _, more in reader_data_collected.send(sender=Reader, reader=reader):
        sections.update(more or {})
    if not any(sections.values()):
        return None
    return {
        "format": FORMAT,
        "version": VERSION,
        "generated_at": timezone.now(),
        "email": reader.email,
        **sections,
    }


def reader_data_json(document: dict[str, Any]) -> str:
    return json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False) + "\n"


def _subscribers(reader: Reader) -> list[dict[str, Any]]:
    subscriptions: dict[int, list[dict[str, Any]]] = {pk: [] for pk in reader.subscriber_ids}
    for s in (
        Subscription.objects.filter(subscriber_id__in=reader.subscriber_ids)
        .select_related("publication")
        .prefetch_related("events")
        .order_by("created_at", "pk")
    ):
        subscriptions[s.subscriber_id].append(
            {
                "publication": {"slug": s.publication.slug, "name": s.publication.name},
                "status": s.status,
                "format": s.format,
                "created_at": s.created_at,
                "confirmed_at": s.confirmed_at,
                "ended_at": s.ended_at,
                "reason": s.reason,
                "invited_at": s.invited_at,
                "reminders_sent": s.reminders_sent,
                "reminded_at": s.reminded_at,
                "converted_at": s.converted_at,
                # each request, confirmation, approval and end, with its reason
                "history": [
                    {
                        "at": e.at,
                        "from_status": e.from_status,
                        "to_status": e.to_status,
                        "reason": e.reason,
                        "by_staff": e.by_id is not None,
                    }
                    for e in s.events.all()
                ],
            }
        )
    return [
        {
            "email": p.email,
            "name": p.name,
            "organization": p.organization,
            "fax": p.fax,
            "postal_address": p.postal_address,
            "source": p.source,
            "created_at": p.created_at,
            "consent": {"at": p.consent_at, "ip": p.consent_ip, "form": p.consent_form},
            "join_code": p.join_code_display or None,
            "subscriptions": subscriptions[p.pk],
        }
        for p in Subscriber.objects.filter(pk__in=reader.subscriber_ids).order_by("pk")
    ]


def _join_requests(reader: Reader) -> list[dict[str, Any]]:
    rows = Subscriber.objects.filter(pk__in=reader.join_request_ids).order_by("pk")
    return [{"requested_at": at} for at in rows.values_list("join_requested_at", flat=True)]


def _suppressions(reader: Reader) -> list[dict[str, Any]]:
    return [
        {
            "email": s.email,  # empty for the entry an erasure left
            "reason": s.reason,
            "source": s.source,
            "created_at": s.created_at,
            "lifted_at": s.lifted_at,
            "lifted_note": s.lifted_note,
        }
        for s in Suppression.objects.matching(reader.email).order_by("created_at", "pk")
    ]


def _contact_messages(reader: Reader) -> list[dict[str, Any]]:
    return [
        {
            "publication": m.publication.slug if m.publication else None,
            "name": m.name,
            "email": m.email,
            "subject": m.subject,
            "body": m.body,
            "status": m.status,
            "ip": m.ip,
            "created_at": m.created_at,
        }
        for m in ContactMessage.objects.filter(email=reader.email)
        .select_related("publication")
        .order_by("created_at", "pk")
    ]


def _cooldowns(reader: Reader) -> list[dict[str, Any]]:
    rows = EmailCooldown.objects.filter(mailbox=mailbox(reader.email)).order_by("kind")
    return [{"kind": kind, "sent_at": at} for kind, at in rows.values_list("kind", "sent_at")]


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def reader_data_summary(document: dict[str, Any]) -> list[str]:
    """What the document holds, a few lines a section, for a person to read."""
    lines = [f"Data held about {document['email']} ({document['generated_at']:%Y-%m-%d}):"]
    for p in document["subscribers"]:
        who = ", ".join(x for x in (p["name"], p["organization"]) if x) or "no name"
        lines.append(f"Subscriber: {who}; source {p['source']}; since {_when(p['created_at'])}")
        consent = p["consent"]
        lines.append(
            f"  consent: {_when(consent['at'])}, {consent['form'] or '-'}, "
            f"from {consent['ip'] or 'no IP kept'}"
        )
        for s in p["subscriptions"]:
            lines.append(
                f"  {s['publication']['name']}: {s['status']} ({s['format']}), "
                f"{len(s['history'])} recorded changes"
            )
    for section, label in (
        ("join_requests", "Join requests (an offline reader's code typed with this address)"),
        ("suppressions", "Suppression entries"),
        ("contact_messages", "Contact messages"),
        ("mailbox_cooldowns", "Recent confirmations to the mailbox"),
        ("deliveries", "Issues mailed"),
        ("events_without_delivery", "ESP events matching no issue mailed"),
    ):
        rows = document.get(section, [])
        lines.append(f"{label}: {len(rows)}")
        if section == "deliveries":
            for d in rows:
                issue = d["issue"]
                kinds = ", ".join(e["kind"] for e in d["events"]) or "no ESP events"
                lines.append(
                    f"  {issue['publication']} {issue['volume']}/{issue['number']}: "
                    f"{d['status']} {_when(d['sent_at'])}; {kinds}"
                )
        if section == "contact_messages":
            lines.extend(f"  {_when(m['created_at'])}: {m['subject']}" for m in rows)
    lines.append("Run with --json for the whole document.")
    return lines
