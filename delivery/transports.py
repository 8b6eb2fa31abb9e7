"""Ways to hand finished messages to the mail system, one chunk at a time.

Each transport sends a whole chunk over one connection (SMTP) or in as few API calls
as the ESP allows (anymail batch), and reports the outcome of every recipient:
sent, to be retried (transient: SMTP 4xx, connection errors, ESP 429 and 5xx) or failed
for good (permanent rejects), with the reason.
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import importlib
import os
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime

import orjson
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from anymail.utils import UNSET, EmailAddress, parse_address_list
from django.conf import settings
from django.core.mail import get_connection
from django.utils import timezone
from urllib3.fields import format_multipart_header_param

from delivery.rendering import PLAIN_ADDRESS, Recipient, RenderedIssue

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
# The payload class each anymail backend builds, by module of anymail.backends.
ESP_PAYLOADS = {
    "mailgun": "MailgunPayload",
    "sparkpost": "SparkPostPayload",
    "mandrill": "MandrillPayload",
    "brevo": "BrevoPayload",
    "unisender_go": "UnisenderGoPayload",
    "test": "TestPayload",
}


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


def _smtp_reason(code: int, message: bytes | str) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"SMTP {code} {message}"[:1000]


def _envelope_address(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def _dot_stuffed(raw: bytes) -> bytes:
    data = raw.replace(b"\n.", b"\n..")
    if data[:1] == b".":
        data = b"." + data
    if data[-2:] != b"\r\n":
        data += b"\r\n"
    return data + b".\r\n"


def _refusal(
    outcome: Outcome, delivery_id: int, code: int, reply: bytes | str, *, ours: bool = False
) -> None:
    """A message the server refused: failed for good on 5xx, sent again later on 4xx,
    as it is when the refusal is of our sender (`ours`: our configuration)."""
    bucket = outcome.failed if 500 <= code < 600 and not ours else outcome.retry
    bucket[delivery_id] = _smtp_reason(code, reply)


def _refused(smtp: smtplib.SMTP, code: int) -> None:
    """Leave the connection ready for the next message after a refusal."""
    if code == 421:
        smtp.close()
    else:
        smtp._rset()


def _sendmail(smtp: smtplib.SMTP, sender: str, rcpt: str, raw: bytes) -> None:
    """`smtp.sendmail(sender, [rcpt], raw)` for a message already in CRLF bytes: the same
    commands, replies and exceptions, with the dot-stuffing done by `bytes.replace`
    instead of smtplib's regular expression, which costs more than building the message.
    (A server offering PIPELINING gets `SmtpTransport._send_pipelined` instead.) The
    caller has greeted the server."""
    options = [f"size={len(raw)}"] if smtp.does_esmtp and smtp.has_extn("size") else []
    code, resp = smtp.mail(sender, options)
    if code != 250:
        _refused(smtp, code)
        raise smtplib.SMTPSenderRefused(code, resp, sender)
    code, resp = smtp.rcpt(rcpt)
    if code not in (250, 251):
        _refused(smtp, code)
        raise smtplib.SMTPRecipientsRefused({rcpt: (code, resp)})
    smtp.putcmd("data")
    code, resp = smtp.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, resp)
    smtp.send(_dot_stuffed(raw))
    code, resp = smtp.getreply()
    if code != 250:
        _refused(smtp, code)
        raise smtplib.SMTPDataError(code, resp)


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
            self._send_pipelined(smtp, rendered, pending, date, outcome)
            return outcome
        while pending:
            delivery_id, recipient = pending.pop(0)
            try:
                rcpt = _envelope_address(recipient.email)
                _sendmail(
                    smtp, rendered.envelope_from, rcpt, rendered.as_bytes(recipient, date=date)
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

    def _send_pipelined(
        self,
        smtp: smtplib.SMTP,
        rendered: RenderedIssue,
        pending: list[tuple[int, Recipient]],
        date: str,
        outcome: Outcome,
    ) -> None:
        """With PIPELINING (RFC 2920) a message's content may open the next group: it
        goes in one write with the next message's MAIL, RCPT and DATA, one round trip
        a message. A message whose content was written but whose reply did not come is
        in doubt and goes again later, as are the ones not sent yet."""
        sender, size = rendered.envelope_from, smtp.has_extn("size")
        held: tuple[int, bytes] | None = None  # DATA accepted; its content goes next
        while pending or held:
            out, current = [], None
            if held is not None:
                out.append(_dot_stuffed(held[1]))
            if pending:
                delivery_id, recipient = pending.pop(0)
                try:
                    rcpt = _envelope_address(recipient.email)
                except UnicodeError as exc:
                    outcome.failed[delivery_id] = f"Address cannot be sent to: {exc}"
                    continue
                raw = rendered.as_bytes(recipient, date=date)
                option = f" SIZE={len(raw)}" if size else ""
                out.append(f"MAIL FROM:<{sender}>{option}\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
                current = (delivery_id, raw)
            try:
                smtp.send(b"".join(out))
                if held is not None:
                    code, reply = smtp.getreply()
                    if code == 250:
                        outcome.sent[held[0]] = ""
                    else:
                        _refusal(outcome, held[0], code, reply)
                    held = None
                if current is not None:
                    replies = [smtp.getreply() for _ in range(3)]  # MAIL, RCPT, DATA
                    (mail, _), (rcpt_code, _), (data, _) = replies
                    if mail == 250 and rcpt_code in (250, 251) and data == 354:
                        held, current = current, None
                        continue
                    if data == 354:  # DATA taken although the envelope was not: end it
                        smtp.send(b".\r\n")
                        smtp.getreply()
                    code, reply = next(r for r in replies if r[0] not in (250, 251, 354))
                    _refusal(outcome, current[0], code, reply, ours=mail != 250)
                    current = None
                    if code == 421:
                        raise smtplib.SMTPServerDisconnected(_smtp_reason(code, reply))
                    smtp.rset()
            except (OSError, smtplib.SMTPException) as exc:
                doubt = [item[0] for item in (held, current) if item is not None]
                self._lost(outcome, doubt + [i for i, _ in pending], exc)
                return


class BackendTransport:
    """Any Django email backend (the outbox, the console, tests): one message per
    recipient through one opened connection."""

    record_every = 100

    def __init__(self) -> None:
        self.backend = get_connection()

    def __enter__(self) -> BackendTransport:
        self.backend.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.backend.close()

    def send(self, rendered: RenderedIssue, batch: Batch) -> Outcome:
        outcome = Outcome()
        date = format_datetime(timezone.now())
        for delivery_id, recipient in batch:
            try:
                self.backend.send_messages([rendered.email_message(recipient, date=date)])
                outcome.sent[delivery_id] = ""
            except Exception as exc:
                outcome.retry[delivery_id] = _error(exc)
        return outcome


def _is_transient(exc: AnymailAPIError) -> bool:
    status = getattr(exc, "status_code", None)
    return status is None or status == 429 or status >= 500


# An address as subscriptions store it: checked and normalised when given, no display
# name. The header parser finds exactly this local part and domain in such a string.


class _PlainAddress(EmailAddress):
    """A plain address with no display name: the header parser would find `local` and
    `domain` in it, and its addr_spec and formatted forms are the string itself, kept
    rather than put together again each time the payload asks."""

    def __init__(self, address: str) -> None:
        # What Address.__init__ stores; its checks (no CR or LF) hold for a plain
        # address already.
        self._username, _, self._domain = address.rpartition("@")
        self._display_name = ""
        self._address = address

    @property
    def addr_spec(self) -> str:
        return self._address

    def format(self, *, use_rfc2047: bool | str = False, idna_encode=None) -> str:
        if use_rfc2047 == "force":  # an encoded-word even for an empty name
            return super().format(use_rfc2047=use_rfc2047, idna_encode=idna_encode)
        return self._address


def recipient_addresses(addresses: Sequence[str]) -> list[EmailAddress]:
    """What `parse_address_list(addresses, field="to")` gives, without running the email
    header parser on every address, which costs more than the rest of a batch call.
    A list holding anything but plain ASCII `local@domain` addresses (a display name,
    a comma, quotes, non-ASCII, no "@") goes to anymail whole, so its results and its
    errors stay anymail's."""
    plain = PLAIN_ADDRESS.fullmatch
    if not all(isinstance(address, str) and plain(address) for address in addresses):
        return parse_address_list(addresses, field="to")
    return [_PlainAddress(address) for address in addresses]


def _form_fields(data: dict | None) -> list[tuple[str, bytes]]:
    """A form's fields by requests' rules: a list is one field per item, None is left
    out, anything but bytes goes as its str, UTF-8."""
    fields = []
    for name, values in (data or {}).items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        fields += (
            (name, value if isinstance(value, bytes) else str(value).encode())
            for value in values
            if value is not None
        )
    return fields


def multipart_form(fields: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """The body and Content-Type requests (urllib3) build for these plain fields, byte for
    byte but for the random boundary, at a tenth of the cost: urllib3 makes an object and
    renders headers for each of a batch's thousand `to` fields."""
    boundary = binascii.hexlify(os.urandom(16)).decode()  # as urllib3 chooses it
    heads: dict[str, bytes] = {}
    parts = []
    for name, value in fields:
        head = heads.get(name)
        if head is None:
            disposition = format_multipart_header_param("name", name)
            head = heads[name] = (
                f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n"
            ).encode()
        parts += (head, value, b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class _MultipartForm:
    """Mailgun's form as multipart/form-data instead of urlencoded (its API takes both):
    requests quotes a urlencoded form byte by byte, and a batch's recipient-variables
    run to hundreds of KB. The same fields, values and order."""

    def get_request_params(self, api_url: str) -> dict:
        params = super().get_request_params(api_url)
        if params["files"]:  # attachments: requests builds the form around them
            return params
        body, content_type = multipart_form(_form_fields(params["data"]))
        params["data"] = body
        params["headers"] = {**(params["headers"] or {}), "Content-Type": content_type}
        return params


class _MailgunRecipientVariables:
    """Mailgun's recipient-variables as anymail builds them, in one pass, for a batch
    whose recipients all have the same merge_data, merge_metadata and merge_headers
    keys (ours); anymail's own code for anything else (a template, global merge data,
    recipients with keys of their own). anymail fills in defaults for every key and
    copies them for each recipient, a third of the cost of a 1,000-recipient call."""

    def populate_recipient_variables(self) -> None:
        emails = self.to_emails
        given = (self.merge_metadata, self.merge_data, self.merge_headers)
        if (
            self.merge_global_data
            or self.data.get("template") is not None
            or not emails
            or not all(given)
            or not all(len(per) == len(emails) and emails[0] in per for per in given)
        ):
            return super().populate_recipient_variables()
        keys = [per[emails[0]].keys() for per in given]
        if not all(
            email in per and per[email].keys() == k
            for per, k in zip(given, keys, strict=True)
            for email in emails
        ):
            return super().populate_recipient_variables()
        metadata, merge_data, headers = given
        v_keys = {key: f"v:{key}" for key in keys[0]}
        h_keys = {field: f"h:{field.title()}" for field in keys[2]}
        custom_data = {**self.metadata, **{key: f"%recipient.{v}%" for key, v in v_keys.items()}}
        self.data.update({h: f"%recipient.{h}%" for h in h_keys.values()})
        v_pairs, h_pairs = list(v_keys.items()), list(h_keys.items())
        variables = {}
        for email in emails:
            meta, head = metadata[email], headers[email]
            mine = {v: meta[key] for key, v in v_pairs}
            mine.update(merge_data[email])
            for name, h in h_pairs:
                mine[h] = head[name]
            variables[email] = mine
        self.data.update({f"v:{key}": value for key, value in custom_data.items()})
        try:  # orjson writes the same object 30 times as fast as json.dumps
            self.data["recipient-variables"] = orjson.dumps(variables)
        except TypeError:
            self.data["recipient-variables"] = self.serialize_json(variables)


# Our messages' merge data and metadata are dicts of str built per batch: with no
# default to merge (ANYMAIL's SEND_DEFAULTS), anymail's combiner would only copy them
# recipient by recipient, and its converter deep-copies them to force lazy translations.
_CONVERTERS = {"to": recipient_addresses, "merge_data": None, "merge_metadata": None}
_OWN = {"merge_data", "merge_metadata"}


def _taken_as_given(combine: Callable[[object, object], object]) -> Callable:
    def combined(default: object, value: object) -> object:
        if default is UNSET and isinstance(value, dict):
            return value
        return combine(default, value)

    return combined


@functools.cache
def _own_payload(esp: str, base: type) -> type:
    """The ESP's own payload class, converting our recipients as described above."""

    def attrs(given: tuple) -> tuple:
        return tuple(
            (a, _taken_as_given(combine) if a in _OWN else combine, _CONVERTERS.get(a, convert))
            for a, combine, convert in given
        )

    namespace = {
        "base_message_attrs": attrs(base.base_message_attrs),
        "anymail_message_attrs": attrs(base.anymail_message_attrs),
    }
    bases = (_MultipartForm, _MailgunRecipientVariables, base) if esp == "mailgun" else (base,)
    return type(f"Own{base.__name__}", bases, namespace)


def _use_own_payload(backend: object, esp: str) -> None:
    """Make this backend instance build `_own_payload`. A backend we cannot vouch for
    (another ESP's, a subclass building its own payload) stays plain anymail."""
    name = ESP_PAYLOADS.get(esp)
    if name is None:
        return
    module = importlib.import_module(f"anymail.backends.{esp}")
    base = getattr(module, name)
    builds = getattr(type(backend), "build_message_payload", None)
    if builds is not module.EmailBackend.build_message_payload:
        return
    if getattr(backend, "_payload_class", base) is not base:  # the test backend's option
        return
    payload = _own_payload(esp, base)
    backend.build_message_payload = lambda message, defaults: payload(message, defaults, backend)


class AnymailTransport:
    """An ESP through django-anymail: one batch call per chunk where the ESP fills merge
    tags (`merge_data` + `merge_headers`), else one call per recipient."""

    def __init__(self, esp: str) -> None:
        self.tag = MERGE_TAGS.get(esp)
        self.tracking_options = esp in ESP_TRACKING_OPTIONS
        self.limit = ESP_BATCH_LIMITS.get(esp, ESP_BATCH_LIMIT)
        self.record_every = self.limit  # one batch call is all or nothing anyway
        self.backend = get_connection()
        _use_own_payload(self.backend, esp)

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

    def send(self, rendered: RenderedIssue, batch: Batch) -> Outcome:
        outcome = Outcome()
        if self.tag is None:
            for item in batch:
                outcome.merge(self._send_one(rendered, item))
            return outcome
        limit = self.limit
        for fmt in ("html", "text"):
            group = [item for item in batch if item[1].format == fmt]
            for start in range(0, len(group), limit):
                outcome.merge(self._send_batch(rendered, group[start : start + limit]))
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
        try:
            message.send()
        except AnymailRecipientsRefused as exc:
            outcome.failed.update((i, _error(exc)) for i in ids)
            return outcome
        except AnymailAPIError as exc:
            bucket = outcome.retry if _is_transient(exc) else outcome.failed
            bucket.update((i, _error(exc)) for i in ids)
            return outcome
        except (AnymailError, OSError) as exc:
            outcome.retry.update((i, _error(exc)) for i in ids)
            return outcome
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


def _esp() -> str | None:
    """The anymail ESP the configured EMAIL_BACKEND sends through, if any."""
    backend = settings.EMAIL_BACKEND
    return backend.split(".")[2] if backend.startswith("anymail.backends.") else None


def names_needed(rendered: RenderedIssue) -> bool:
    """Whether the configured transport needs recipients' names for this issue: an ESP
    only where the templates use them; SMTP and Django backends write them in To."""
    return _esp() is None or "name" in rendered.fields


def transport():
    """The transport for the configured EMAIL_BACKEND."""
    if settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend":
        return SmtpTransport()
    esp = _esp()
    return BackendTransport() if esp is None else AnymailTransport(esp)
