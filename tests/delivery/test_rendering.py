"""Issue emails: standards-clean MIME, the headers of SPEC §7, per-recipient links."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from django.core.mail.message import sanitize_address

from delivery import rendering
from delivery.rendering import Recipient, RenderedIssue, plain_text, to_header
from subscriptions.tokens import FOOTER_PREFERENCES, UNSUBSCRIBE, read_id_token


def recipient(n: int, fmt: str = "html", name: str = "Ann Reader") -> Recipient:
    return Recipient.for_subscription(
        issue_id=7,
        subscriber_id=100 + n,
        subscription_id=200 + n,
        email=f"r{n}@example.org",
        name=name,
        format=fmt,
    )


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    assert message.defects == []
    return message


@pytest.mark.django_db
def test_message_parses_strictly_with_the_required_headers(issue, settings):
    settings.SITE_URL = "https://monitor.example.org"
    raw = RenderedIssue(issue).as_bytes(recipient(1))
    message = parse(raw)

    assert message["From"] == "The Monitor <monitor@example.org>"
    assert message["To"] == "Ann Reader <r1@example.org>"
    assert message["Reply-To"] == "pubs@example.org"
    assert message["Subject"] == "The Monitor, Volume 6, Issue 11"
    assert message["List-Id"] == "The Monitor <monitor.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(
        r"<https://monitor\.example\.org/unsubscribe/[^/>]+/>", message["List-Unsubscribe"]
    )
    assert message["Message-ID"] == "<issue.7.101@example.org>"
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only


@pytest.mark.django_db
def test_parts_carry_the_articles_footer_and_working_links(issue, settings):
    settings.SITE_URL = "https://monitor.example.org"
    message = parse(RenderedIssue(issue).as_bytes(recipient(1)))
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()

    for body in (text, html):
        assert "Headline 2" in body
        assert "4516 43rd Street NW" in body
        assert "301-562-8021" in body
        assert "Unauthorized reproduction" in body
        assert "r1@example.org subscribed" in body
    # CSS is inlined: no <style> block left, styles on the elements
    assert "<style" not in html
    assert 'style="' in html
    assert "<strong>confused</strong>" in html
    # the text part is laid out for reading, not stripped HTML
    assert "<" not in text.split("Read on the web")[0]
    assert "the archive <https://example.org/monitor/>" in " ".join(text.split())
    # prose is wrapped for reading; only lines holding a long link may run over
    assert all(len(line) <= 72 for line in text.splitlines() if "://" not in line)

    unsubscribe = re.search(r'href="https://monitor\.example\.org/unsubscribe/([^/"]+)/"', html)
    preferences = re.search(r"https://monitor\.example\.org/preferences/([^/\s]+)/", text)
    assert read_id_token(UNSUBSCRIBE, unsubscribe.group(1)) == 201
    assert read_id_token(FOOTER_PREFERENCES, preferences.group(1)) == 101


@pytest.mark.django_db
def test_each_recipient_gets_their_own_links_and_message_id(issue):
    rendered = RenderedIssue(issue)
    one, two = parse(rendered.as_bytes(recipient(1))), parse(rendered.as_bytes(recipient(2)))

    assert one["List-Unsubscribe"] != two["List-Unsubscribe"]
    assert one["Message-ID"] != two["Message-ID"]
    assert one.get_body(("html",)).get_content() != two.get_body(("html",)).get_content()
    # the same recipient gets the same Message-ID every time (duplicates can be dropped)
    assert parse(rendered.as_bytes(recipient(1)))["Message-ID"] == one["Message-ID"]


@pytest.mark.django_db
def test_plain_text_subscribers_get_a_text_only_message(issue):
    message = parse(RenderedIssue(issue).as_bytes(recipient(3, fmt="text")))
    assert message.get_content_type() == "text/plain"
    assert "Headline 1" in message.get_content()
    assert message["List-Unsubscribe"]


@pytest.mark.django_db
def test_names_with_newlines_and_non_ascii_cannot_inject_headers(issue):
    evil = "Zoë\r\nBcc: victim@example.org"
    raw = RenderedIssue(issue).as_bytes(recipient(4, name=evil))
    message = parse(raw)
    assert message["Bcc"] is None
    assert message["To"].addresses[0].display_name == "Zoë Bcc: victim@example.org"
    assert b"\r\nBcc:" not in raw


@pytest.mark.django_db
def test_markup_in_a_name_is_escaped_in_html(issue):
    message = parse(RenderedIssue(issue).as_bytes(recipient(5, name="<script>x</script>")))
    assert "<script>" not in message.get_body(("html",)).get_content()


def test_plain_text_wraps_and_spells_out_markdown():
    text = plain_text("# Title\n\nA *very* long " + "word " * 30 + "\n\n- a\n- b")
    assert text.startswith("Title\n-----")
    assert "very" in text and "*" not in text
    assert all(len(line) <= 72 for line in text.splitlines())
    assert text.endswith("- a\n- b")


NAMES = [
    "",
    "Reader 1",
    "O'Brien",
    "Last, First",
    'The "Analyst"',
    "back\\slash",
    "Dr. Smith (retired)",
    "=?utf-8?q?x?=",
    "x" * 59,
    "x" * 60,
    "x" * 61,
    "A name that goes on and on past the length a header line folds at, surely",
    "Jürgen Müller",
    "Łukasz",
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("address", ["reader@example.org", "jürgen@exämple.org", "a@[127.0.0.1]"])
def test_the_to_header_is_what_djangos_sanitize_address_writes(name, address):
    assert to_header(name, address) == sanitize_address((name, address), "utf-8")


def test_a_plain_name_and_address_skip_the_header_encoder(monkeypatch):
    monkeypatch.setattr(rendering, "sanitize_address", None)  # must not be needed
    assert to_header("Reader 1", "reader@example.org") == "Reader 1 <reader@example.org>"
    assert to_header("Last, First", "a@example.org") == '"Last, First" <a@example.org>'
