"""Delivery reports from the bounce mailbox, for sends over plain SMTP: each message read
once, tied to the delivery it is about, classified, and handed to `delivery.policy`.

Rules kept here:
* A message is identified by the VERP address it was sent to (`delivery.verp`), else by
  the addresses flufl.bounce finds in it (RFC 3464 reports and the many formats of
  older mail systems), each taken as the latest delivery sent to that address.
* A report's `Action: failed` with a 5.x.x status is a permanent failure, with 4.x.x
  (or a 5.x.x about the message or the sending side, `policy.report_is_permanent`) a
  temporary one; a delay notice (`Action: delayed`, or the warnings flufl.bounce calls
  temporary) and an auto-reply are neither: read, and nothing changes.
* A message is recorded once (`BounceMessage`, keyed by its Message-ID, else the hash of
  its bytes) in the same transaction as its consequences: a copy read again, or a
  message read twice because the mailbox could not be told in time, counts nothing twice.
* A message that cannot be read or trusted (larger than MAX_BYTES, a VERP key we did not
  sign, a delivery that does not exist, no report in it) changes nothing and is kept
  aside with the reason: moved to the mailbox's KEPT_FOLDER (or, from standard input,
  into the Maildir `var/bounces`), never deleted.
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.header
import email.policy
import hashlib
import logging
import mailbox
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from urllib.parse import unquote, urlsplit

import flufl.bounce
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone
from imapclient import IMAPClient

from delivery import feedback, policy, verp
from delivery.models import ERASED_EMAIL, BounceMessage, Delivery

log = logging.getLogger(__name__)

Outcome = BounceMessage.Outcome

# A delivery report carries the headers of the message, or a part of it (Postfix: 50 KB);
# anything this large is not one.
MAX_BYTES = 1_000_000
PROCESSED_FOLDER = "Processed"
KEPT_FOLDER = "Kept"
# Where a VERP address can stand in a report delivered to the mailbox: the envelope
# recipient the delivering MTA wrote, or the To of the report (the envelope sender).
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_STATUS = re.compile(r"^\s*([245])\.\d{1,3}\.\d{1,3}")
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|auto(matic)?[ -]?(reply|response|antwort)|autoreply|"
    r"abwesenheit|vacation|away from)",
    re.IGNORECASE,
)
PERMANENT, TEMPORARY, DELAYED = "permanent", "temporary", "delayed"


@dataclass(frozen=True)
class Failure:
    """One recipient a report says was not delivered, and how."""

    email: str
    kind: str  # PERMANENT, TEMPORARY or DELAYED
    status: str = ""
    diagnostic: str = ""


@dataclass
class Verdict:
    outcome: str
    reason: str = ""
    events: int = 0
    suppressed: list[str] = field(default_factory=list)
    duplicate: bool = False
    key: str = ""  # what the message is recorded under


class Kept(Exception):
    """A message kept aside, and why."""


def _text(value: object) -> str:
    """A header value as text, whatever its encoding ("" if it cannot be read)."""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        text = str(value)
    return text.encode("utf-8", "replace").decode("utf-8")


def _headers(message: Message, name: str) -> list[str]:
    return [_text(v) for v in message.get_all(name, [])]


def message_key(message: Message, raw: bytes) -> str:
    """What a message is recorded under: its Message-ID, else the hash of its bytes."""
    message_id = "".join(_headers(message, "Message-ID")[:1]).strip()
    if message_id and len(message_id) <= 190 and message_id.isascii():
        return f"mid:{message_id}"
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


def _address(value: str) -> str:
    """The address of a report field such as `rfc822; reader@example.org`."""
    _, _, address = value.partition(";")
    return (address or value).strip().strip("<>").strip().lower()


def report_failures(message: Message) -> list[Failure] | None:
    """The recipients of an RFC 3464 delivery report (message/delivery-status), or None
    when the message holds none."""
    failures, found = [], False
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        found = True
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            if not isinstance(block, Message):
                continue
            action = _text(block.get("Action", "")).strip().lower()
            recipient = _text(
                block.get("Final-Recipient", "") or block.get("Original-Recipient", "")
            )
            address = _address(recipient)
            if not address or "@" not in address:
                continue
            matched = _STATUS.match(_text(block.get("Status", "")))
            status = matched.group(0).strip() if matched else ""
            diagnostic = " ".join(_text(block.get("Diagnostic-Code", "")).split())[:1000]
            if action == "delayed":
                kind = DELAYED
            elif action == "failed":
                kind = PERMANENT if policy.report_is_permanent(status) else TEMPORARY
            else:
                continue  # delivered, relayed, expanded
            failures.append(Failure(address, kind, status, diagnostic))
    return failures if found else None


def _decoded(address: bytes | str) -> str:
    if isinstance(address, bytes):
        address = address.decode("utf-8", "replace")
    return address.strip().strip("<>").lower()


def failures_in(message: Message) -> list[Failure]:
    """Who a message says was not delivered: its RFC 3464 report if it has one, else what
    flufl.bounce recognises (its temporary failures are delay warnings)."""
    failures = report_failures(message)
    if failures:
        return failures
    temporary, permanent = flufl.bounce.all_failures(message)
    found = [Failure(_decoded(a), PERMANENT) for a in sorted(permanent)]
    found += [Failure(_decoded(a), DELAYED) for a in sorted(temporary - permanent)]
    return [f for f in found if "@" in f.email]


def is_auto_reply(message: Message) -> bool:
    """An out-of-office or other automatic answer (RFC 3834 and the usual markers)."""
    submitted = _text(message.get("Auto-Submitted", "")).strip().lower()
    if submitted.startswith("auto-replied"):
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    if _text(message.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.match(_text(message.get("Subject", ""))))


def verp_delivery(message: Message, recipient: str = "") -> Delivery | None:
    """The delivery named by the VERP address the message was sent to, or None when it
    names none. Raises Kept for a VERP address we did not sign or a delivery that does not
    exist."""
    text = "\n".join([recipient, *(v for h in RECIPIENT_HEADERS for v in _headers(message, h))])
    keys = verp.addresses_in(text)
    if not keys:
        return None
    errors = []
    for key in keys:
        try:
            delivery_id = verp.delivery_id(key)
        except verp.ForgedKey as exc:
            errors.append(str(exc))
            continue
        delivery = Delivery.objects.only("id", "issue_id", "email").filter(pk=delivery_id).first()
        if delivery is None:
            raise Kept(f"VERP address names delivery {delivery_id}, which does not exist")
        return delivery
    raise Kept("; ".join(errors))


def _worst(failures: list[Failure]) -> Failure:
    order = {PERMANENT: 0, TEMPORARY: 1, DELAYED: 2}
    return min(failures, key=lambda f: order[f.kind])


def _parsed(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.default)


def message_process(raw: bytes, *, source: str, recipient: str = "") -> Verdict:
    """Read one message of the bounce mailbox and apply what it says, once (see the
    rules above). `recipient`: the envelope recipient, when the MTA passes it (a pipe)."""
    subject, key = "", f"sha256:{hashlib.sha256(raw).hexdigest()}"
    try:
        if len(raw) > MAX_BYTES:
            raise Kept(f"too large for a delivery report: {len(raw):,} bytes")
        message = _parsed(raw)
        subject = _text(message.get("Subject", ""))[:200]
        key = message_key(message, raw)
        with transaction.atomic():
            # The record first: a second reader of the same message at once (an
            # operator's run beside beat's poll) waits here for the first to commit.
            known, created = BounceMessage.objects.get_or_create(
                key=key, defaults={"source": source, "outcome": Outcome.KEPT}
            )
            if not created:
                known = BounceMessage.objects.select_for_update().get(pk=known.pk)
                if known.outcome != Outcome.KEPT:
                    return Verdict(known.outcome, "already read", duplicate=True, key=key)
            verdict = _apply(message, key=key, recipient=recipient)
            verdict.key = key
            BounceMessage.objects.filter(pk=known.pk).update(
                source=source,
                outcome=verdict.outcome,
                reason=verdict.reason,
                subject=subject,
                size=len(raw),
                events=verdict.events,
                kept_in="",
            )
        return verdict
    except Kept as exc:
        reason = str(exc)
    except DatabaseError:
        raise  # the message stays where it is, to be read again
    except Exception as exc:  # a message no parser could read: kept, never lost
        log.exception("bounce message unreadable")
        reason = f"unreadable: {type(exc).__name__}: {exc}"
    BounceMessage.objects.update_or_create(
        key=key,
        defaults={
            "source": source,
            "outcome": Outcome.KEPT,
            "reason": reason[:2000],
            "subject": subject,
            "size": len(raw),
            "events": 0,
        },
    )
    log.warning("bounce message kept aside: %s", reason)
    return Verdict(Outcome.KEPT, reason, key=key)


def _apply(message: Message, *, key: str, recipient: str) -> Verdict:
    delivery = verp_delivery(message, recipient)
    failures = failures_in(message)
    if not failures:
        if is_auto_reply(message):
            return Verdict(Outcome.IGNORED, "an automatic reply")
        raise Kept("no delivery report in it")
    if all(f.kind == DELAYED for f in failures):
        return Verdict(Outcome.IGNORED, "a delay notice: still being tried")
    if delivery is not None and delivery.email == ERASED_EMAIL:
        return Verdict(Outcome.IGNORED, "about a reader who was erased since")
    at = timezone.now()
    found: list[tuple[Delivery, Failure]] = []
    if delivery is not None:
        # Sent to this delivery's own return path: the report is about it, even when the
        # address that failed is one the reader's mail was forwarded to.
        own = [f for f in failures if f.email == delivery.email.lower()]
        found.append((delivery, _worst(own or failures)))
    else:
        for failure in failures:
            if failure.kind == DELAYED:
                continue
            match = feedback.delivery_find(metadata={}, message_id=None, email=failure.email, at=at)
            if match is not None:
                found.append((match, failure))
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    verdict = Verdict(Outcome.COUNTED)
    for match, failure in found:
        if failure.kind == DELAYED:
            continue
        description = " ".join(
            p for p in (f"{failure.kind} failure", failure.status, failure.diagnostic) if p
        )
        _, created, reason = policy.failure_record(
            delivery=match,
            key=f"bounce:{digest}:{match.pk}",
            permanent=failure.kind == PERMANENT,
            source="bounce",
            description=description,
            at=at,
        )
        verdict.events += created
        if reason is not None:
            verdict.suppressed.append(match.email)
    if not verdict.events:
        names = ", ".join(sorted({f.email for f in failures}))[:500]
        return Verdict(Outcome.IGNORED, f"about no delivery of ours: {names}")
    kinds = sorted({f.kind for _, f in found})
    verdict.reason = f"{verdict.events} {'/'.join(kinds)} failure(s)"
    return verdict


# --- mailboxes -----------------------------------------------------------------------


@dataclass
class Summary:
    read: int = 0
    counted: int = 0
    ignored: int = 0
    kept: int = 0
    duplicates: int = 0
    suppressed: list[str] = field(default_factory=list)
    kept_reasons: list[str] = field(default_factory=list)

    def add(self, verdict: Verdict) -> None:
        self.read += 1
        if verdict.duplicate:
            self.duplicates += 1
        elif verdict.outcome == Outcome.COUNTED:
            self.counted += 1
        elif verdict.outcome == Outcome.IGNORED:
            self.ignored += 1
        else:
            self.kept += 1
            self.kept_reasons.append(verdict.reason)
        self.suppressed += verdict.suppressed


def _kept_in(verdict: Verdict, where: str) -> None:
    """Note where a kept message now is."""
    if verdict.outcome == Outcome.KEPT:
        BounceMessage.objects.filter(key=verdict.key).update(kept_in=where[:500])


def maildir_process(path: Path | str, *, source: str = "maildir") -> Summary:
    """Every message in the Maildir's inbox (new and cur), each then moved into its
    PROCESSED_FOLDER or KEPT_FOLDER (Maildir++ subfolders)."""
    box = mailbox.Maildir(str(path), factory=None, create=False)
    processed, kept = box.add_folder(PROCESSED_FOLDER), box.add_folder(KEPT_FOLDER)
    summary = Summary()
    for key in list(box.keys()):
        raw = box.get_bytes(key)
        verdict = message_process(raw, source=source)
        summary.add(verdict)
        target = kept if verdict.outcome == Outcome.KEPT else processed
        target.add(raw)
        _kept_in(verdict, f"{path}/.{KEPT_FOLDER}")
        box.remove(key)
    return summary


def stdin_process(raw: bytes, *, recipient: str = "") -> Summary:
    """One message from an MTA's pipe; one kept aside goes into the Maildir `var/bounces`,
    folder KEPT_FOLDER."""
    summary = Summary()
    verdict = message_process(raw, source="stdin", recipient=recipient)
    summary.add(verdict)
    if verdict.outcome == Outcome.KEPT:
        folder = Path(settings.VAR_DIR) / "bounces"
        folder.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(str(folder), factory=None, create=True)
        box.add_folder(KEPT_FOLDER).add(raw)
        _kept_in(verdict, f"{folder}/.{KEPT_FOLDER}")
    return summary


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    ssl: bool
    username: str
    password: str
    folder: str

    @classmethod
    def from_url(cls, url: str) -> ImapAccount:
        """`imaps://user:password@host[:port]/[FOLDER]` (INBOX by default)."""
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ValueError(f"not an imap:// or imaps:// URL with a host: {url!r}")
        ssl = parts.scheme == "imaps"
        return cls(
            host=parts.hostname,
            port=parts.port or (993 if ssl else 143),
            ssl=ssl,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            folder=unquote(parts.path.lstrip("/")) or "INBOX",
        )


class Busy(Exception):
    """Another run is reading the IMAP mailbox."""


IMAP_LOCK = "delivery.bounces.imap"


@contextlib.contextmanager
def _only_reader() -> Iterator[None]:
    """One run at a time reads the IMAP mailbox (an operator's process_bounces beside
    beat's poll): two would read the same messages, which the records count once, and
    then both move them (one fails, or the folder gets a copy twice). The lock is in
    the shared cache and lasts at most the task's time limit, should a run die
    holding it."""
    token = secrets.token_hex(8)
    if not cache.add(IMAP_LOCK, token, timeout=settings.CELERY_TASK_TIME_LIMIT):
        raise Busy("another run is reading the bounce mailbox; try again when it ends")
    try:
        yield
    finally:
        if cache.get(IMAP_LOCK) == token:
            cache.delete(IMAP_LOCK)


def imap_process(url: str, *, timeout: float = 60) -> Summary:
    """Every message in the IMAP folder, each then moved (MOVE, else copied and
    expunged) into the PROCESSED_FOLDER or KEPT_FOLDER beside it, created if missing.
    Busy while another run reads it."""
    account = ImapAccount.from_url(url)
    summary = Summary()
    with (
        _only_reader(),
        IMAPClient(account.host, port=account.port, ssl=account.ssl, timeout=timeout) as client,
    ):
        client.login(account.username, account.password)
        for name in (PROCESSED_FOLDER, KEPT_FOLDER):
            if not client.folder_exists(name):
                client.create_folder(name)
        client.select_folder(account.folder)
        for uid in client.search(["NOT", "DELETED"]):
            fetched = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
            raw = fetched.get(b"BODY[]")
            if raw is None:
                continue
            verdict = message_process(raw, source="imap")
            summary.add(verdict)
            target = KEPT_FOLDER if verdict.outcome == Outcome.KEPT else PROCESSED_FOLDER
            _kept_in(verdict, f"IMAP folder {target}")
            _imap_move(client, uid, target)
        client.expunge()
    return summary


def _imap_move(client: IMAPClient, uid: int, folder: str) -> None:
    if client.has_capability("MOVE"):
        client.move([uid], folder)
        return
    client.copy([uid], folder)
    client.add_flags([uid], [b"\\Seen", b"\\Deleted"])
