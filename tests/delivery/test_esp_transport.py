"""The anymail batch path: our recipients' addresses converted without the header
parser, Mailgun's form sent as multipart, batches cut at each ESP's limit, and the
same request reaching the ESP as anymail's own payload would send."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import anymail.backends.mailgun
import anymail.backends.test
import anymail.utils
import pytest
import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailInvalidAddress,
    AnymailSerializationError,
)
from anymail.message import AnymailMessage
from anymail.utils import parse_address_list
from django.core import mail

from bench.espstub import TO_FIELD
from delivery import transports
from delivery.rendering import Recipient, rendered_issue
from delivery.transports import AnymailTransport
from delivery.transports import esp as esp_module
from delivery.transports.esp import multipart_form, recipient_addresses

from .test_pipeline import api_error

pytestmark = pytest.mark.django_db

PLAIN = [
    "reader0@example.org",
    "first.last+tag@mail.example.co.uk",
    "o'brien@example.org",
    "a!#$%&'*+/=?^_`{|}~-z@example.org",
    "Upper.Case@Example.ORG",
    "x@localhost",
    "1@2.3",
]
UNUSUAL = [
    "Reader Zero <reader0@example.org>",
    "a@example.org, b@example.org",
    '"quoted local"@example.org',
    "jürgen@example.org",
    "reader@exämple.org",
    " padded@example.org",
    "a@[127.0.0.1]",
    "a_b@ex_ample.org",
]
INVALID = ["no-at-sign", "reader@", "", "a..b@example.org", "a@example..org", "a@b@example.org"]


def recipients(count: int, *, start: int = 0, format: str = "html") -> list[tuple[int, Recipient]]:
    return [
        (
            n,
            Recipient.for_subscription(
                issue_id=1,
                subscriber_id=n,
                subscription_id=n,
                email=f"reader{n}@example.org",
                name="Jürgen Müller" if n % 7 == 0 else f"Reader {n}",
                format=format,
            ),
        )
        for n in range(start, start + count)
    ]


def stock(transport: AnymailTransport) -> AnymailTransport:
    """The same transport, its backend building anymail's own payload."""
    del transport.backend.build_message_payload
    return transport


@pytest.mark.parametrize("address", PLAIN)
def test_plain_addresses_convert_to_what_anymails_parser_gives(address, monkeypatch):
    expected = parse_address_list([address, "reader1@example.org"], field="to")
    monkeypatch.setattr(esp_module, "parse_address_list", None)  # must not be needed

    converted = recipient_addresses([address, "reader1@example.org"])

    assert converted == expected
    for mine, theirs in zip(converted, expected, strict=True):
        assert (mine.display_name, mine.username, mine.domain) == (
            theirs.display_name,
            theirs.username,
            theirs.domain,
        )
        assert mine.addr_spec == theirs.addr_spec
        assert mine.address == theirs.address == str(mine)
        assert mine.format(idna_encode=str.upper) == theirs.format(idna_encode=str.upper)
        assert mine.format(use_rfc2047="force") == theirs.format(use_rfc2047="force")
        assert mine.format_addr_spec() == theirs.format_addr_spec()
        assert mine.as_dict() == theirs.as_dict()
        assert mine.uses_eai == theirs.uses_eai


@pytest.mark.parametrize("address", UNUSUAL)
def test_unusual_addresses_are_left_to_anymails_parser(address):
    given = ["reader0@example.org", address]

    assert recipient_addresses(given) == parse_address_list(given, field="to")


@pytest.mark.parametrize("address", INVALID)
def test_an_invalid_address_raises_anymails_own_error(address):
    given = ["reader0@example.org", address]
    with pytest.raises(AnymailInvalidAddress) as theirs:
        parse_address_list(given, field="to")

    with pytest.raises(AnymailInvalidAddress) as mine:
        recipient_addresses(given)

    assert str(mine.value) == str(theirs.value)


def test_an_invalid_address_sends_the_batch_again_later_as_before(issue, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    rendered = rendered_issue(issue)
    batch = recipients(3)
    batch[1] = (1, batch[1][1]._replace(email="reader@"))

    with AnymailTransport("test") as transport:
        outcome = transport.send(rendered, batch)
    with stock(AnymailTransport("test")) as transport:
        before = transport.send(rendered, batch)

    assert outcome == before
    assert sorted(outcome.retry) == [0, 1, 2]
    assert all(e.startswith("AnymailInvalidAddress: ") for e in outcome.retry.values())
    assert mail.outbox == []


def test_the_header_parser_runs_for_the_sender_not_for_each_recipient(issue, settings, monkeypatch):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    parsed: list[str] = []
    real = anymail.utils.getaddresses
    monkeypatch.setattr(anymail.utils, "getaddresses", lambda a: parsed.extend(a) or real(a))

    with AnymailTransport("test") as transport:
        outcome = transport.send(rendered_issue(issue), recipients(500))

    assert len(outcome.sent) == 500
    assert not any(address.startswith("reader") for address in parsed)


class Mailgun(BaseHTTPRequestHandler):
    """Mailgun's sending endpoint as far as anymail cares: records each request."""

    protocol_version = "HTTP/1.1"
    received: list[tuple[str, bytes]]

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.headers["Content-Type"], body))
        answer = json.dumps({"id": f"<{len(self.received)}@example.org>", "message": "Queued."})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())


@pytest.fixture
def mailgun(settings) -> Iterator[list[tuple[str, bytes]]]:
    """A local Mailgun API; yields the (Content-Type, body) of each call it gets."""
    received: list[tuple[str, bytes]] = []
    handler = type("Handler", (Mailgun,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "key-test",
        "MAILGUN_API_URL": f"http://127.0.0.1:{server.server_port}/v3",
    }
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def form(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The fields of a form as the ESP reads them, in order, whatever the encoding."""
    if content_type == "application/x-www-form-urlencoded":
        return parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert content_type.startswith("multipart/form-data; boundary=")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.defects == []
    return [
        (
            part.get_param("name", header="content-disposition"),
            part.get_payload(decode=True).decode("utf-8"),
        )
        for part in message.iter_parts()
    ]


def as_read(fields: list[tuple[str, str]]) -> list[tuple[str, object]]:
    """A form as Mailgun reads it: fields by name (a repeated one in its order), and the
    recipient-variables as the JSON object they are."""
    return sorted(
        ((name, json.loads(v) if name == "recipient-variables" else v) for name, v in fields),
        key=lambda field: field[0],
    )


def test_a_mailgun_batch_goes_as_multipart_with_the_fields_anymail_urlencoded(issue, mailgun):
    rendered = rendered_issue(issue)
    batch = recipients(40) + recipients(15, start=40, format="text")

    with AnymailTransport("mailgun") as transport:
        outcome = transport.send(rendered, batch)
    with stock(AnymailTransport("mailgun")) as transport:
        before = transport.send(rendered, batch)

    assert len(mailgun) == 4  # one call per format, each way
    assert [ct.split(";")[0] for ct, _ in mailgun] == [
        "multipart/form-data",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded",
    ]
    for (ct, body), (old_ct, old_body), group in zip(
        mailgun[:2], mailgun[2:], (batch[:40], batch[40:]), strict=True
    ):
        fields, old = form(ct, body), form(old_ct, old_body)
        assert as_read(fields) == as_read(old)
        values = dict(fields)
        assert [v for name, v in fields if name == "to"] == [r.email for _, r in group]
        assert len(TO_FIELD.findall(body)) == len(group)  # as bench/espstub.py counts
        assert values["h:List-Unsubscribe"] == "%recipient.h:List-Unsubscribe%"
        assert values["h:Message-Id"] == "%recipient.h:Message-Id%"
        assert values["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert values["v:delivery_id"] == "%recipient.v:delivery_id%"
        variables = json.loads(values["recipient-variables"])
        for delivery_id, r in group:
            assert variables[r.email] == {
                "email": r.email,  # the fields the templates use; not the name
                "unsubscribe_url": r.unsubscribe_url,
                "preferences_url": r.preferences_url,
                "v:delivery_id": str(delivery_id),
                "h:List-Unsubscribe": f"<{r.unsubscribe_url}>",
                "h:Message-Id": rendered.message_id(r),
            }
    assert sorted(outcome.sent) == sorted(before.sent) == list(range(55))
    assert set(outcome.sent.values()) == {"<1@example.org>", "<2@example.org>"}
    assert not outcome.retry and not outcome.failed


FIELDS = {
    "to": ["reader0@example.org", "reader1@example.org"],
    "from": ["The Monitor <monitor@example.org>"],
    "subject": 'Ünïcode — and "quotes", & ampersands=equals+plus',
    "o:tag": ["monitor", "second"],
    "h:Empty": "",
    "v:number": 5,
    "skipped": None,
    'name"with\\odd': "value",
    "recipient-variables": json.dumps({"reader0@example.org": {"name": "Jürgen"}}),
}


def test_the_multipart_form_is_what_requests_builds():
    marker = ("zz", (None, b"last"))
    theirs, their_type = requests.models.RequestEncodingMixin._encode_files([marker], FIELDS)

    mine, my_type = multipart_form([*esp_module._form_fields(FIELDS), ("zz", b"last")])

    their_boundary = their_type.partition("boundary=")[2]
    my_boundary = my_type.partition("boundary=")[2]
    assert my_type == f"multipart/form-data; boundary={my_boundary}"
    assert len(my_boundary) == len(their_boundary) == 32
    assert mine == theirs.replace(their_boundary.encode(), my_boundary.encode())


@pytest.mark.parametrize(
    ("chunk", "calls"),
    [(1000, [1000]), (2300, [1000, 1000, 300]), (999, [999])],
)
def test_mailgun_batches_hold_up_to_1000_recipients(issue, mailgun, chunk, calls):
    batch = recipients(chunk) + recipients(7, start=chunk, format="text")

    with transports.transport() as transport:
        outcome = transport.send(rendered_issue(issue), batch)

    assert transport.record_every == 1000
    assert [len(TO_FIELD.findall(body)) for _, body in mailgun] == [*calls, 7]
    assert len(outcome.sent) == chunk + 7


def test_other_esps_batch_at_500_by_default(issue, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"

    with transports.transport() as transport:
        outcome = transport.send(rendered_issue(issue), recipients(1200))

    assert transport.record_every == 500
    assert [len(m.to) for m in mail.outbox] == [500, 500, 200]
    assert len(outcome.sent) == 1200


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
@pytest.mark.parametrize(
    ("esp", "limit"),
    [("sendgrid", 1000), ("postmark", 500), ("resend", 100), ("unisender_go", 500)],
)
def test_each_esp_records_after_a_batch_of_its_own_size(esp, limit, settings):
    settings.EMAIL_BACKEND = f"anymail.backends.{esp}.EmailBackend"
    settings.ANYMAIL = {
        f"{esp.upper()}_API_KEY": "key",
        f"{esp.upper()}_SERVER_TOKEN": "token",
        f"{esp.upper()}_API_URL": "https://esp.example.org/",
    }

    assert transports.transport().record_every == limit


ESP_SETTINGS = {
    "mailgun": {"MAILGUN_API_KEY": "key", "MAILGUN_API_URL": "https://api.example.org/v3"},
    "sparkpost": {"SPARKPOST_API_KEY": "key"},
    "brevo": {"BREVO_API_KEY": "key"},
    "test": {},
}


def request_sent(params: dict) -> tuple[dict, list | object]:
    """What goes over the wire for requests' params: the headers that matter, and the
    body decoded (form fields, or JSON)."""
    prepared = requests.Request(**params).prepare()
    headers = {
        k: v for k, v in prepared.headers.items() if k not in {"Content-Type", "Content-Length"}
    }
    content_type = prepared.headers.get("Content-Type", "")
    if content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
        body = prepared.body if isinstance(prepared.body, bytes) else prepared.body.encode()
        return headers, as_read(form(content_type, body))
    return headers | {"Content-Type": content_type}, json.loads(prepared.body)


@pytest.mark.parametrize("esp", sorted(esp_module.MERGE_TAGS))
def test_every_merge_tag_esp_gets_the_request_anymails_own_payload_builds(
    esp, issue, settings, monkeypatch
):
    settings.EMAIL_BACKEND = f"anymail.backends.{esp}.EmailBackend"
    settings.ANYMAIL = ESP_SETTINGS[esp]
    assert set(ESP_SETTINGS) == set(esp_module.MERGE_TAGS)
    sent = []

    def post_to_esp(backend, payload, message):
        if esp == "test":
            sent.append((type(payload).__name__, payload.get_params()))
        else:
            sent.append(
                (type(payload).__name__, request_sent(payload.get_request_params(backend.api_url)))
            )
        raise api_error(503)

    transport = AnymailTransport(esp)
    monkeypatch.setattr(type(transport.backend), "post_to_esp", post_to_esp)
    batch = recipients(20)
    with transport:
        outcome = transport.send(rendered_issue(issue), batch)
    with stock(AnymailTransport(esp)) as transport:
        before = transport.send(rendered_issue(issue), batch)

    (mine, request), (theirs, expected) = sent
    assert mine == f"Own{theirs}"
    assert request == expected
    assert outcome == before
    assert sorted(outcome.retry) == list(range(20))


def test_a_backend_we_cannot_vouch_for_builds_anymails_own_payload(settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"

    class Payload(anymail.backends.test.TestPayload):
        pass

    class Backend(anymail.backends.test.EmailBackend):
        def build_message_payload(self, message, defaults):
            return Payload(message, defaults, self)

    given_payload = anymail.backends.test.EmailBackend(payload_class=Payload)
    esp_module._use_own_payload(given_payload, "test")
    own_backend = Backend()
    esp_module._use_own_payload(own_backend, "test")
    unmapped = anymail.backends.test.EmailBackend()
    esp_module._use_own_payload(unmapped, "postmark")

    assert "build_message_payload" in vars(AnymailTransport("test").backend)
    for backend in (given_payload, own_backend, unmapped):
        assert "build_message_payload" not in vars(backend)


RAGGED = {  # recipients with keys of their own, a template, global merge data
    "keys of their own": {
        "merge_data": {"a@example.org": {"name": "A"}, "b@example.org": {"city": "Minsk"}},
        "merge_headers": {"a@example.org": {"X-One": "1"}, "b@example.org": {"X-Two": "2"}},
        "merge_metadata": {"a@example.org": {"n": "1"}, "b@example.org": {"n": "2"}},
    },
    "a recipient left out": {
        "merge_data": {"a@example.org": {"name": "A"}},
        "merge_metadata": {"b@example.org": {"delivery_id": "2"}},
    },
    "global merge data": {
        "merge_data": {"a@example.org": {"name": "A"}, "b@example.org": {"name": "B"}},
        "merge_global_data": {"name": "reader", "issue": "11"},
    },
    "a template": {
        "merge_data": {"a@example.org": {"name": "A"}, "b@example.org": {"name": "B"}},
        "template_id": "monthly",
    },
}


def sent_both_ways(monkeypatch, given: dict) -> tuple[list, list]:
    """A two-recipient Mailgun message with the attributes `given`, sent through our
    payload and through anymail's own, each stopped at the ESP (503): the requests
    they would make and the errors they raised."""
    sent, raised = [], []

    def post_to_esp(backend, payload, message):
        sent.append(request_sent(payload.get_request_params(backend.api_url)))
        raise api_error(503)

    for transport in (AnymailTransport("mailgun"), stock(AnymailTransport("mailgun"))):
        monkeypatch.setattr(type(transport.backend), "post_to_esp", post_to_esp)
        message = AnymailMessage(
            subject="Issue 11",
            body="Dear %recipient.name%",
            from_email="monitor@example.org",
            to=["a@example.org", "b@example.org"],
            connection=transport.backend,
        )
        for attr, value in given.items():
            setattr(message, attr, value)
        with pytest.raises((AnymailAPIError, AnymailSerializationError)) as caught:
            message.send()
        raised.append(caught.type)
    return sent, raised


@pytest.mark.parametrize("given", list(RAGGED.values()), ids=list(RAGGED))
def test_mailgun_recipient_variables_fall_back_to_anymails_own(given, settings, monkeypatch):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = ESP_SETTINGS["mailgun"]

    sent, raised = sent_both_ways(monkeypatch, {"metadata": {"issue_id": "11"}, **given})

    assert raised == [AnymailAPIError, AnymailAPIError]
    mine, theirs = sent
    assert mine == theirs
    assert any(name == "recipient-variables" for name, _ in mine[1])


def _uniform_batch(value: object) -> dict[str, dict]:
    """Two recipients with the same keys (the one-pass path), `value` in each."""
    emails = ("a@example.org", "b@example.org")
    return {
        "merge_data": {e: {"name": e, "extra": value} for e in emails},
        "merge_headers": {e: {"X-One": "1"} for e in emails},
        "merge_metadata": {e: {"n": "1"} for e in emails},
    }


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (requests.structures.CaseInsensitiveDict({"k": "v"}), None),  # anymail's JSON takes it
        (object(), AnymailSerializationError),  # neither takes it
    ],
    ids=["anymail's json", "neither"],
)
def test_a_merge_value_orjson_cannot_write_goes_to_anymails_json(
    value, error, settings, monkeypatch
):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = ESP_SETTINGS["mailgun"]

    sent, raised = sent_both_ways(monkeypatch, _uniform_batch(value))

    if error is None:
        mine, theirs = sent
        assert mine == theirs
        assert raised == [AnymailAPIError, AnymailAPIError]
    else:
        assert sent == []
        assert raised == [error, error]


def test_default_merge_data_from_the_settings_is_merged_as_anymail_does(settings, monkeypatch):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    defaults = {"merge_data": {"a@example.org": {"campaign": "spring"}}}
    settings.ANYMAIL = {**ESP_SETTINGS["mailgun"], "SEND_DEFAULTS": defaults}
    given = _uniform_batch("x")

    sent, raised = sent_both_ways(monkeypatch, given)

    assert raised == [AnymailAPIError, AnymailAPIError]
    mine, theirs = sent
    assert mine == theirs
    variables = dict(mine[1])["recipient-variables"]
    assert variables["a@example.org"]["campaign"] == "spring"
    assert "campaign" not in given["merge_data"]["a@example.org"]  # the message's own dict


def test_our_mailgun_batches_take_the_one_pass_path(issue, settings, monkeypatch):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = ESP_SETTINGS["mailgun"]
    calls = []
    monkeypatch.setattr(
        anymail.backends.mailgun.MailgunPayload,
        "populate_recipient_variables",
        lambda payload: calls.append(payload),
    )
    sent = []

    def post_to_esp(backend, payload, message):
        sent.append(dict(request_sent(payload.get_request_params(backend.api_url))[1]))
        raise api_error(503)

    transport = AnymailTransport("mailgun")
    monkeypatch.setattr(type(transport.backend), "post_to_esp", post_to_esp)
    with transport:
        transport.send(rendered_issue(issue), recipients(5))
    assert len(sent[0]["recipient-variables"]) == 5
    assert calls == []  # anymail's own was not needed
