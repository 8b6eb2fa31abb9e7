"""Importing a legacy list into a publication (`import_subscribers`, SPEC §3).

Rows are `email,name,organization[,fax,postal_address]`. A row with an address is an
email reader; a row with only a fax number or a postal address is an *offline* reader:
a subscription `offline` (never mailed) and a personal join code for the letter.

Never a duplicate: a row is the person of the same address, else (when one of the two
has no address) the person of the same fax number (digits only, a leading + kept) or of
the same postal address (whitespace and case folded); a row that repeats an earlier one
of the file is skipped. A known person only has blank details filled in; an offline
reader whose row now brings an address gets it, and their offline subscription is moved
to email. Nobody is resubscribed: a suppressed address or an ended subscription is
skipped. Every row is checked before anything is written, so an invalid row never stops
the valid ones; valid rows are written a block at a time, each block in one transaction
of a fixed number of queries. New email subscriptions are active with `confirmed`, else
pending with one email each: an invitation for the legacy lists, a confirmation
otherwise."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from issues.models import Publication
from subscriptions.hashing import address_hashes
from subscriptions.invitations import permission_request
from subscriptions.joincodes import join_code_new
from subscriptions.models import (
    Subscriber,
    Subscription,
    SubscriptionEvent,
    Suppression,
    fax_key,
    postal_key,
    validate_fax,
    validate_single_line,
)
from subscriptions.services import ENDED_STATUSES, _fill_blanks, _transition, normalize_email

Status = Subscription.Status

CREATED, UPDATED, SKIPPED, INVALID = "created", "updated", "skipped", "invalid"
IMPORT_COLUMNS = ("email", "name", "organization", "fax", "postal_address")
DETAILS = ("name", "organization", "fax", "postal_address")
_LIMITS = {"name": 200, "organization": 200, "fax": 60, "postal_address": 1000}
IMPORT_BLOCK = 1000


@dataclass
class ImportRow:
    line: int
    outcome: str
    who: str  # the address, else the fax number, else the first line of the postal address
    message: str = ""
    offline: bool = False


@dataclass
class ImportReport:
    rows: list[ImportRow] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {o: self.count(o) for o in (CREATED, UPDATED, SKIPPED, INVALID)}

    @property
    def offline_created(self) -> list[int]:
        """The lines that created an offline reader."""
        return [row.line for row in self.rows if row.outcome == CREATED and row.offline]

    def summary(self) -> str:
        text = ", ".join(f"{n} {o}" for o, n in self.counts.items())
        if offline := len(self.offline_created):
            text += f"; {offline} of the created are offline readers (fax or post, no email)"
        return text


@dataclass
class _Row:
    """A valid row, normalised."""

    line: int
    email: str
    details: dict[str, str]
    fax_key: str
    postal_key: str

    @property
    def who(self) -> str:
        return self.email or self.details["fax"] or self.details["postal_address"].splitlines()[0]


def _row_errors(row: dict[str | None, Any]) -> list[str]:
    errors = []
    if None in row:
        errors.append("more values than columns")
    email = row.get("email") or ""
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors.append(f"{email!r} is not a valid email address")
    elif not (row.get("fax") or row.get("postal_address")):
        errors.append("no email, fax number or postal address")
    if row.get("fax"):
        try:
            validate_fax(row["fax"])
        except ValidationError as exc:
            errors.extend(exc.messages)
    for name, limit in _LIMITS.items():
        value = row.get(name) or ""
        if len(value) > limit:
            errors.append(f"{name} is longer than {limit} characters")
        elif name != "postal_address":
            try:
                validate_single_line(value)
            except ValidationError:
                errors.append(f"{name} contains a line break or control character")
    return errors


def subscribers_import(
    *,
    rows: Iterable[tuple[int, dict[str | None, Any]]],
    publication: Publication,
    source: str = Subscriber.Source.IMPORT,
    confirmed: bool = False,
    form: str = "import",
) -> ImportReport:
    """Import (line number, row) pairs of a legacy list into `publication`; the module
    docstring has the rules."""
    report = ImportReport()
    seen: dict[tuple[str, str], int] = {}  # (kind, key) -> the first line with it
    handled: dict[int, int] = {}  # subscriber id -> the line that handled them
    block: list[_Row] = []
    for line, raw in rows:
        row = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}
        errors = _row_errors(row)
        if errors:
            who = row.get("email") or row.get("fax") or ""
            report.rows.append(ImportRow(line, INVALID, who, "; ".join(errors)))
            continue
        details = {k: row.get(k) or "" for k in DETAILS}
        valid = _Row(
            line,
            normalize_email(row.get("email") or ""),
            details,
            fax_key(details["fax"]),
            postal_key(details["postal_address"]),
        )
        if duplicate := _repeats(valid, seen):
            report.rows.append(ImportRow(line, SKIPPED, valid.who, duplicate))
            continue
        for kind, key in (("address", valid.email), ("fax number", valid.fax_key)):
            if key:
                seen.setdefault((kind, key), line)
        if valid.postal_key:
            seen.setdefault(("postal address", valid.postal_key), line)
        block.append(valid)
        if len(block) >= IMPORT_BLOCK:
            report.rows += _import_block_retrying(
                block, publication, source, confirmed, form, handled
            )
            block = []
    if block:
        report.rows += _import_block_retrying(block, publication, source, confirmed, form, handled)
    report.rows.sort(key=lambda r: r.line)
    return report


def _repeats(row: _Row, seen: dict[tuple[str, str], int]) -> str:
    """Why `row` is an earlier row of the file again, or ''."""
    if row.email:
        keys = [("address", row.email)]
    else:
        keys = [("fax number", row.fax_key), ("postal address", row.postal_key)]
    for kind, key in keys:
        if key and (kind, key) in seen:
            return f"same {kind} as line {seen[kind, key]}"
    return ""


def _import_block_retrying(*args: Any) -> list[ImportRow]:
    # Someone subscribing through the site between our look-up and our insert (or, once
    # in 10**12, a join code drawn twice) makes the block's transaction fail whole;
    # looking again then finds them.
    try:
        return _import_block(*args)
    except IntegrityError:
        return _import_block(*args)


class _Known:
    """The people a block may be about, looked up by address, fax key and postal key."""

    def __init__(self, people: Iterable[Subscriber]) -> None:
        self.by: dict[tuple[str, str], list[Subscriber]] = {}
        for person in people:  # oldest first
            for attribute in ("email", "fax_key", "postal_key"):
                if key := getattr(person, attribute):
                    self.by.setdefault((attribute, key), []).append(person)

    def match(self, row: _Row) -> Subscriber | None:
        """The known person `row` is: same address; else, when one of the two has no
        address, the same fax number, else the same postal address. Readers without an
        address come first, then the oldest."""
        if row.email and (same := self.by.get(("email", row.email))):
            return same[0]
        for attribute in ("fax_key", "postal_key"):
            same = self.by.get((attribute, getattr(row, attribute)), [])
            without = [c for c in same if not c.email]
            same = without if row.email else without + [c for c in same if c.email]
            if same:
                return same[0]
        return None


def _join_codes(count: int) -> list[str]:
    """`count` join codes, distinct and unused."""
    codes: set[str] = set()
    while len(codes) < count:
        fresh = {join_code_new() for _ in range(count - len(codes))} - codes
        taken = Subscriber.objects.filter(join_code__in=fresh).values_list("join_code", flat=True)
        codes |= fresh - set(taken)
    return list(codes)


def _import_block(
    block: list[_Row],
    publication: Publication,
    source: str,
    confirmed: bool,
    form: str,
    handled: dict[int, int],
) -> list[ImportRow]:
    """Write one block of valid, distinct rows with a handful of queries."""
    emails = [r.email for r in block if r.email]
    # By keyed hash: an erased reader's address is on the list as nothing else.
    by_hash = {h: email for email in emails for h in address_hashes(email)}
    suppressed = {
        by_hash[h]
        for h in Suppression.objects.active()
        .filter(email_hash__in=by_hash)
        .values_list("email_hash", flat=True)
    }
    now = timezone.now()
    email_status = Status.ACTIVE if confirmed else Status.PENDING
    reason = f"{form} (confirmed)" if confirmed else form
    out: list[ImportRow] = []
    done: dict[int, int] = {}
    with transaction.atomic():
        faxes = [r.fax_key for r in block if r.fax_key]
        postals = [r.postal_key for r in block if r.postal_key]
        candidates = _Known(
            Subscriber.objects.filter(
                Q(email__in=emails) | Q(fax_key__in=faxes) | Q(postal_key__in=postals)
            ).order_by("pk")
        )
        matched: dict[int, Subscriber | None] = {}
        for row in block:
            if row.email in suppressed:
                continue
            matched[row.line] = candidates.match(row)
        known = {p.pk: p for p in matched.values() if p is not None}
        subscriptions = {
            s.subscriber_id: s
            for s in Subscription.objects.filter(publication=publication, subscriber__in=known)
        }

        # New people: one insert; offline readers get their join code.
        newcomers = [r for r in block if r.line in matched and matched[r.line] is None]
        codes = iter(_join_codes(sum(1 for r in newcomers if not r.email)))
        people = []
        for row in newcomers:
            person = Subscriber(
                email=row.email or None,
                **row.details,
                source=source,
                consent_form=form[:100],
                join_code=None if row.email else next(codes),
            )
            person.normalize()
            people.append(person)
        people = Subscriber.objects.bulk_create(people)
        created = {row.line: person for row, person in zip(newcomers, people, strict=True)}

        # Known people, once each: blank details filled in, an address added to an
        # offline reader, a code for an offline reader who lacks one.
        notes: dict[int, list[str]] = {}
        needs_code = []
        for row in block:
            person = matched.get(row.line)
            if person is None or person.pk in handled or person.pk in done:
                continue
            done[person.pk] = row.line
            notes[person.pk] = _fill_blanks(person, **row.details)
            if row.email and not person.email:
                person.email = row.email
                person.save(update_fields=["email"])
                notes[person.pk].insert(0, "email")
            if not person.email and not person.join_code:
                needs_code.append(person)
        for person, code in zip(needs_code, _join_codes(len(needs_code)), strict=True):
            person.join_code = code
        Subscriber.objects.bulk_update(needs_code, ["join_code"])

        # New subscriptions: by email when the person has an address, else offline.
        wanted = [*people, *(known[pk] for pk in notes if pk not in subscriptions)]
        added = Subscription.objects.bulk_create(
            Subscription(
                subscriber=person,
                publication=publication,
                status=email_status if person.email else Status.OFFLINE,
                confirmed_at=now if confirmed and person.email else None,
            )
            for person in wanted
        )
        SubscriptionEvent.objects.bulk_create(
            SubscriptionEvent(subscription=s, to_status=s.status, reason=reason) for s in added
        )
        for subscription in added:
            if subscription.subscriber_id in notes:
                notes[subscription.subscriber_id].insert(0, "subscribed")
        # An offline subscription whose reader now has an address moves to email.
        moved = []
        for pk in notes:
            subscription = subscriptions.get(pk)
            if subscription and subscription.status == Status.OFFLINE and known[pk].email:
                subscription.subscriber = known[pk]
                _transition(
                    subscription,
                    allowed=[Status.OFFLINE],
                    to=email_status,
                    note=f"{reason}: email address added",
                    confirmed_at=now if confirmed else None,
                )
                notes[pk].append(f"offline -> {email_status}")
                moved.append(subscription)
        if not confirmed:
            permission_request(
                subscriptions=[s for s in [*added, *moved] if s.status == Status.PENDING],
                source=source,
            )

        for row in block:
            if row.email in suppressed:
                out.append(ImportRow(row.line, SKIPPED, row.who, "on the suppression list"))
                continue
            if row.line in created:
                person = created[row.line]
                offline = not person.email
                message = f"offline; join code {person.join_code_display}" if offline else ""
                out.append(ImportRow(row.line, CREATED, row.who, message, offline=offline))
                continue
            person = matched[row.line]
            first = handled.get(person.pk) or done[person.pk]
            if first != row.line:
                out.append(ImportRow(row.line, SKIPPED, row.who, f"same reader as line {first}"))
                continue
            subscription = subscriptions.get(person.pk)
            if notes[person.pk]:
                out.append(ImportRow(row.line, UPDATED, row.who, ", ".join(notes[person.pk])))
            elif subscription.status in ENDED_STATUSES:
                message = f"{subscription.status} earlier; not resubscribed"
                out.append(ImportRow(row.line, SKIPPED, row.who, message))
            else:
                message = f"already {subscription.status}"
                out.append(ImportRow(row.line, SKIPPED, row.who, message))
    handled.update(done)
    handled.update({person.pk: line for line, person in created.items()})
    return out
