"""Every issue email is built here.

An issue is rendered once per format (HTML with CSS inlined, and plain text) into a
template that still holds placeholders for the per-recipient parts (address, name,
unsubscribe and preference links). A finished message is then that template with the
values spliced in and quoted-printable applied: no MIME tree is built per recipient.
"""

from __future__ import annotations

import binascii
import html
import re
import textwrap
from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage as MIMEMessage
from email.message import Message
from email.policy import SMTP, compat32
from email.utils import format_datetime, formataddr
from functools import cached_property
from typing import NamedTuple
from urllib.parse import urlsplit

import css_inline
from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import sanitize_address
from django.template.loader import render_to_string
from django.utils import timezone

from issues.crossrefs import link_bodies, markdown_link
from issues.markdown import render_markdown
from issues.models import Article, Issue
from monitor_site.emails import one_line
from subscriptions.tokens import footer_preferences_url, unsubscribe_url

FIELDS = ("email", "name", "unsubscribe_url", "preferences_url")
_PLACEHOLDER = re.compile(r"@@MONITOR_(EMAIL|NAME|UNSUBSCRIBE_URL|PREFERENCES_URL)@@")
HTML_LIMIT = 100 * 1024  # Gmail clips messages over about 102 KB
# "=" never appears unencoded in a quoted-printable body, so this cannot collide.
BOUNDARY = "==monitor=alt=="
# A plain ASCII `local@domain`: dot-atoms, no quoting, no IP literal.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


class Recipient(NamedTuple):
    """What differs between two copies of an issue (a tuple: one is made for every
    message)."""

    delivery_key: str  # "<issue id>.<subscriber id>", for the Message-ID
    email: str
    name: str
    unsubscribe_url: str
    preferences_url: str
    format: str = "html"

    @classmethod
    def for_subscription(
        cls,
        *,
        issue_id: int,
        subscriber_id: int,
        subscription_id: int,
        email: str,
        name: str,
        format: str = "html",
        unsubscribe: Callable[[int], str] = unsubscribe_url,
        preferences: Callable[[int], str] = footer_preferences_url,
    ) -> Recipient:
        """`unsubscribe` and `preferences` make the links (`tokens.url_maker`, once for
        a chunk of recipients)."""
        return cls(
            delivery_key=f"{issue_id}.{subscriber_id}",
            email=email,
            name=one_line(name),
            unsubscribe_url=unsubscribe(subscription_id),
            preferences_url=preferences(subscriber_id),
            format=format,
        )


def sample_recipient(
    *, key: str = "0.0", email: str = "reader@example.org", name: str = "Sample Reader"
) -> Recipient:
    """The made-up reader a preview, the preflight and a test send are personalised for:
    real-looking links that lead nowhere, so that no editor's click unsubscribes anyone.
    `key` makes the Message-ID ("<issue id>.test" for a test send)."""
    return Recipient(
        delivery_key=key,
        email=email,
        name=name,
        unsubscribe_url=f"{settings.SITE_URL}/unsubscribe/sample/",
        preferences_url=f"{settings.SITE_URL}/preferences/sample/",
    )


class Template:
    """A text with placeholders, split once so that filling it is one join."""

    def __init__(self, text: str, *, escape: bool) -> None:
        parts = _PLACEHOLDER.split(text)
        self.literals = parts[0::2]
        self.fields = [p.lower() for p in parts[1::2]]
        self.escape = escape

    def fill(self, recipient: Recipient) -> str:
        values = [getattr(recipient, f) for f in self.fields]
        if self.escape:
            values = [html.escape(v) for v in values]
        out = [self.literals[0]]
        for value, literal in zip(values, self.literals[1:], strict=True):
            out += (value, literal)
        return "".join(out)

    def with_tags(self, tag: str) -> str:
        """The text with each placeholder written as an ESP merge tag (`{{%s}}` …)."""
        out = [self.literals[0]]
        for field, literal in zip(self.fields, self.literals[1:], strict=True):
            out += (tag % field, literal)
        return "".join(out)


def plain_text(markdown: str, width: int = 72) -> str:
    """Markdown laid out for reading as plain text: paragraphs wrapped, links spelled
    out, emphasis markers dropped."""
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1 <\2>", markdown)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])[*_]([^*_\n]+)[*_](?![\w*])", r"\1", text)
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        heading = re.match(r"#{1,6}\s+(.*)", lines[0]) if len(lines) == 1 else None
        if heading:
            title = heading.group(1).strip()
            paragraphs.append(f"{title}\n{'-' * min(len(title), width)}")
        elif all(re.match(r"\s*([-*+]|\d+\.)\s", line) for line in lines):
            paragraphs.append(
                "\n".join(
                    textwrap.fill(line.strip(), width, subsequent_indent="  ") for line in lines
                )
            )
        else:
            paragraphs.append(textwrap.fill(" ".join(line.strip() for line in lines), width))
    return "\n\n".join(paragraphs)


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _qp(text: str) -> bytes:
    # CRLF in, CRLF out: binascii keeps the line ending it finds first.
    return binascii.b2a_qp(_crlf(text).encode("utf-8"), istext=True)


def _qp_lines(text: str) -> bytes:
    """Whole lines quoted-printable, byte for byte as they come out of `_qp` inside a
    longer text: b2a_qp keeps nothing from one line to the next but the line ending it
    chose, and the CRLF put in front (dropped after) makes it choose CRLF."""
    return binascii.b2a_qp(b"\r\n" + _crlf(text).encode("utf-8"), istext=True)[2:]


class EncodedTemplate:
    """A template's quoted-printable form, encoded once: lines without a placeholder
    are kept encoded, and only the few lines that hold one are encoded per recipient.
    `encode(r)` is `_qp(template.fill(r))`, at a fraction of the cost."""

    def __init__(self, text: str, *, escape: bool) -> None:
        self.whole = Template(text, escape=escape) if "\n" not in text else None
        self.parts: list[bytes | Template] = []
        if self.whole is not None:
            return  # one line: the line ending binascii picks differs; encode it whole
        lines = text.split("\n")
        lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        static: list[str] = []
        for line in lines:
            if _PLACEHOLDER.search(line):
                if static:
                    self.parts.append(_qp_lines("".join(static)))
                    static = []
                self.parts.append(Template(line, escape=escape))
            else:
                static.append(line)
        if static:
            self.parts.append(_qp_lines("".join(static)))

    def encode(self, recipient: Recipient) -> bytes:
        if self.whole is not None:
            return _qp(self.whole.fill(recipient))
        return b"".join(
            part if isinstance(part, bytes) else _qp_lines(part.fill(recipient))
            for part in self.parts
        )


def to_header(name: str, email: str) -> str:
    """The To header of one copy, as Django's `sanitize_address` writes it. That runs the
    header encoder and the address parser, a quarter of the cost of a message; a short
    ASCII name with a plain address comes out of it as `formataddr` writes them."""
    if len(name) <= 60 and name.isascii() and PLAIN_ADDRESS.fullmatch(email):
        return formataddr((name, email))
    return sanitize_address((name, email), "utf-8")


def _domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def issue_context(issue: Issue, articles: list[Article]) -> dict:
    """What the issue email's templates are filled with, placeholders for the recipient."""
    publication = issue.publication
    masthead = list(publication.masthead.all())
    # Cross-references link to the archive as on the issue's page, absolute here.
    year = issue.date.year if issue.date else None
    bodies_html = [a.body_html or render_markdown(a.body) for a in articles]
    bodies_html = link_bodies(bodies_html, year, base_url=settings.SITE_URL)
    bodies_text = link_bodies(
        [a.body for a in articles], year, base_url=settings.SITE_URL, link=markdown_link
    )
    return {
        "issue": issue,
        "publication": publication,
        "articles": [
            {
                "article": a,
                "html": body_html,
                "text": plain_text(body_text),
                "rule": "=" * min(len(a.headline), 72),
            }
            for a, body_html, body_text in zip(articles, bodies_html, bodies_text, strict=True)
        ],
        "senior_analysts": [m.name for m in masthead if m.role == "senior_analyst"],
        "analysts": [m.name for m in masthead if m.role == "analyst"],
        "issue_url": settings.SITE_URL + issue.get_absolute_url(),
        "site_url": settings.SITE_URL,
        "email": "@@MONITOR_EMAIL@@",
        "name": "@@MONITOR_NAME@@",
        "unsubscribe_url": "@@MONITOR_UNSUBSCRIBE_URL@@",
        "preferences_url": "@@MONITOR_PREFERENCES_URL@@",
    }


class ArticlePreview(NamedTuple):
    html: str
    text: str


def article_preview(*, issue: Issue, headline: str, body: str) -> ArticlePreview:
    """One article, not saved, as the email shows it: the HTML part (CSS inlined) and the
    text part, from the issue email's templates, personalised for the sample reader. The
    issue gives the header and footer; its saved articles are left out."""
    article = Article(issue=issue, headline=headline, body=body)
    context = issue_context(issue, [article])
    sample = sample_recipient()
    html_body = css_inline.inline(render_to_string("emails/issue.html", context))
    text = render_to_string("emails/issue.txt", context).strip()
    text = re.sub(r"\n{3,}", "\n\n", text) + "\n"
    return ArticlePreview(
        Template(html_body, escape=True).fill(sample), Template(text, escape=False).fill(sample)
    )


class RenderedIssue:
    """An issue rendered once, ready to be personalised for any number of recipients."""

    def __init__(self, issue: Issue, *, test: bool = False) -> None:
        self.issue = issue
        self.publication = issue.publication
        context = self._context()
        html_body = render_to_string("emails/issue.html", context)
        self.html_source = css_inline.inline(html_body)
        text = render_to_string("emails/issue.txt", context).strip()
        self.text_source = re.sub(r"\n{3,}", "\n\n", text) + "\n"
        self.html = Template(self.html_source, escape=True)
        self.text = Template(self.text_source, escape=False)
        used = {*self.html.fields, *self.text.fields}
        # the recipient fields the templates use, in FIELDS order
        self.fields = tuple(field for field in FIELDS if field in used)
        self._html_qp = EncodedTemplate(self.html_source, escape=True)
        self._text_qp = EncodedTemplate(self.text_source, escape=False)
        subject = self.subject
        if test:
            subject = f"[TEST] {subject}"
        self.from_email = self.publication.from_address
        self.envelope_from = (
            sanitize_address(self.from_email, "utf-8").rpartition("<")[2].rstrip(">")
        )
        self.reply_to = self.publication.reply_to_addresses
        self.list_id = self.publication.list_id
        self.message_id_domain = self.publication.list_id_domain or _domain()
        self.subject_line = one_line(subject)
        self._static_headers = self._headers()

    def _context(self) -> dict:
        return issue_context(self.issue, list(self.issue.articles.all()))

    @cached_property
    def subject(self) -> str:
        issue = self.issue
        label = f"{self.publication.name}, Volume {issue.volume.number}, Issue {issue.number}"
        return f"{label}: {issue.title}" if issue.title else label

    def _headers(self) -> dict[str, bytes]:
        """Header blocks common to every copy, folded once by the email package."""
        head = MIMEMessage(policy=SMTP)
        head["From"] = self.from_email
        if self.reply_to:
            head["Reply-To"] = ", ".join(self.reply_to)
        head["Subject"] = self.subject_line
        head["List-Id"] = self.list_id
        head["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        head["MIME-Version"] = "1.0"
        common = head.as_bytes().rstrip(b"\r\n") + b"\r\n"
        return {
            "html": common
            + f'Content-Type: multipart/alternative; boundary="{BOUNDARY}"\r\n'.encode(),
            "text": common
            + b'Content-Type: text/plain; charset="utf-8"\r\n'
            + b"Content-Transfer-Encoding: quoted-printable\r\n",
        }

    def message_id(self, recipient: Recipient) -> str:
        """The same for every copy of this issue sent to this subscriber, so a receiver
        can drop a duplicate left by a crash."""
        return f"<issue.{recipient.delivery_key}@{self.message_id_domain}>"

    def html_size(self) -> int:
        return len(self.html_source.encode("utf-8"))

    def as_bytes(self, recipient: Recipient, *, date: str | None = None) -> bytes:
        """The finished message, CRLF line endings, ready for SMTP DATA."""
        date = date or format_datetime(timezone.now())
        to = to_header(recipient.name, recipient.email)
        head = (
            f"To: {to}\r\nDate: {date}\r\nMessage-ID: {self.message_id(recipient)}\r\n"
            f"List-Unsubscribe: <{recipient.unsubscribe_url}>\r\n"
        ).encode("ascii")
        text = self._text_qp.encode(recipient)
        if recipient.format == "text":
            return self._static_headers["text"] + head + b"\r\n" + text
        part = (
            b'Content-Type: text/%s; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        boundary = f"--{BOUNDARY}".encode()
        return b"".join(
            (
                self._static_headers["html"],
                head,
                b"\r\n",
                boundary,
                b"\r\n",
                part % b"plain",
                text,
                b"\r\n",
                boundary,
                b"\r\n",
                part % b"html",
                self._html_qp.encode(recipient),
                b"\r\n",
                boundary,
                b"--\r\n",
            )
        )

    def email_message(self, recipient: Recipient, *, date: str | None = None) -> RawEmailMessage:
        return RawEmailMessage(self, recipient, self.as_bytes(recipient, date=date))


class RawEmailMessage(EmailMessage):
    """A finished message for Django email backends (outbox, test, console): the
    backend asks for `message()` and gets these exact bytes, parsed."""

    def __init__(self, rendered: RenderedIssue, recipient: Recipient, raw: bytes) -> None:
        super().__init__(
            subject=rendered.subject_line,
            body=rendered.text.fill(recipient),
            from_email=rendered.from_email,
            to=[recipient.email],
            reply_to=rendered.reply_to,
        )
        self.raw = raw

    def message(self) -> Message:
        return message_from_bytes(self.raw, policy=compat32)


_cache: dict[tuple[int, str, bool], RenderedIssue] = {}


def rendered_issue(issue: Issue, *, test: bool = False) -> RenderedIssue:
    """The rendered issue, kept per worker process while the issue does not change."""
    key = (issue.pk, issue.updated_at.isoformat() if issue.updated_at else "", test)
    found = _cache.get(key)
    if found is None:
        if len(_cache) > 16:
            _cache.clear()
        found = _cache[key] = RenderedIssue(issue, test=test)
    return found
