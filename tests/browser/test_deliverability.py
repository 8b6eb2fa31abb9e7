"""What mailbox providers see: SpamAssassin's score of a real issue email, and every kind
of message parsed under `email.policy.strict` with the headers of SPEC section 7."""

from __future__ import annotations

import email.utils
import re

import pytest

from tests.browser.checkers import (
    SPAM_LIMIT,
    long_lines,
    require_spamassassin,
    spamassassin,
    strict_parse,
)
from tests.browser.pages import issue_messages, transactional_messages, wire_bytes

pytestmark = pytest.mark.django_db

SITE = "https://monitor.example.org"


# What the receiving server puts on top, so that the message is scored as it arrives
# from a relay with a name and a public address (example.org's own).
def received() -> bytes:
    return (
        "Return-Path: <monitor@example.org>\r\n"
        "Received: from smtp.example.org (smtp.example.org [93.184.216.34])\r\n"
        f"\tby mx.example.net with ESMTPS id 4Xy7Zq2c; {email.utils.formatdate()}\r\n"
    ).encode()


GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture(autouse=True)
def _public_site(settings) -> None:
    # Links as readers get them: https, on the site's own name.
    settings.SITE_URL = SITE


def test_a_real_issue_email_scores_at_most_half_a_point(newsroom):
    require_spamassassin()
    messages = issue_messages(newsroom)

    scores = {
        name: spamassassin(received() + messages[name], name)
        for name in ("issue 11 (html)", "issue 11 (text)")
    }

    assert {name: s for name, (s, _) in scores.items() if s > SPAM_LIMIT} == {}, scores
    # The control: a message SpamAssassin must call spam, so that a low score means something.
    control = messages["issue 11 (text)"].replace(b"\r\n\r\n", f"\r\n\r\n{GTUBE}\r\n".encode(), 1)
    score, rules = spamassassin(control, "(control: GTUBE)")
    assert score >= 5 and "GTUBE" in rules


def test_issue_emails_parse_strictly_with_the_list_headers(newsroom):
    for name, raw in issue_messages(newsroom).items():
        assert long_lines(raw) == [], name
        assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b""), name  # CRLF only
        message = strict_parse(raw)

        for header in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
            assert len(message.get_all(header) or []) == 1, (name, header)
        assert email.utils.parsedate_to_datetime(message["Date"]) is not None
        assert re.fullmatch(r"<issue\.\d+\.\d+@example\.org>", message["Message-ID"])
        assert message["List-Id"] == "The Monitor <monitor.example.org>"
        unsubscribe = re.fullmatch(rf"<({SITE}/unsubscribe/[^>]+/)>", message["List-Unsubscribe"])
        assert unsubscribe, message["List-Unsubscribe"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = message.get_body(("plain",)).get_content()
        assert unsubscribe.group(1) in text and f"{SITE}/preferences/" in text
        if name.endswith("(text)"):
            assert message.get_content_type() == "text/plain"
        else:
            assert message.get_content_type() == "multipart/alternative"
            parts = [p.get_content_type() for p in message.iter_parts()]
            assert parts == ["text/plain", "text/html"]
            html = message.get_body(("html",)).get_content()
            assert unsubscribe.group(1) in html and "<style" not in html  # CSS inlined


@pytest.mark.parametrize(
    "kind",
    [
        "confirmation",
        "welcome",
        "request approved",
        "request rejected",
        "preferences link",
        "contact acknowledgement",
        "contact notification",
        "invitation",
        "invitation reminder",
        "join confirmation",
    ],
)
def test_transactional_emails_parse_strictly(newsroom, kind):
    built = transactional_messages(newsroom)[kind]
    raw = wire_bytes(built)

    assert long_lines(raw) == []
    message = strict_parse(raw)

    for header in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
        assert len(message.get_all(header) or []) == 1, header
    assert email.utils.parsedate_to_datetime(message["Date"]) is not None
    assert message["To"].addresses[0].addr_spec == built.to[0]
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    for part in message.iter_parts():
        assert part.get_content_charset() == "utf-8"
        assert SITE in part.get_content() or kind.startswith("contact")
