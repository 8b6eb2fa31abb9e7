"""An ESP through django-anymail: one batch call per chunk where the ESP fills merge
tags in content sent with the message (`merge_data` + `merge_headers`), else one call
per recipient. Batches are cut at each ESP's documented limit."""

from __future__ import annotations

import binascii
import functools
import importlib
import os
from collections.abc import Callable, Sequence

import orjson
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from anymail.utils import UNSET, EmailAddress, parse_address_list
from django.core.mail import get_connection
from urllib3.fields import format_multipart_header_param

from delivery.rendering import PLAIN_ADDRESS, Recipient, RenderedIssue
from delivery.transports.base import Batch, Outcome, _error

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
# The payload class each anymail backend builds, by module of anymail.backends.
ESP_PAYLOADS = {
    "mailgun": "MailgunPayload",
    "sparkpost": "SparkPostPayload",
    "mandrill": "MandrillPayload",
    "brevo": "BrevoPayload",
    "unisender_go": "UnisenderGoPayload",
    "test": "TestPayload",
}


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
