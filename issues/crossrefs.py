"""Cross-references between issues, as the legacy archive writes them.

A reference sits in a parenthesis after "see" and names one or more publications, each
followed by dates; a year applies to every date before it back to the previous year:

    (…; see the Monitor, October 7, December 8-10, 15-16; Fortnight in Review,
    October 8, December 17, 1999)

Source lists without "see" ("Itar-Tass, December 15-16, 1999") are not references.
On the issue page and in the email each date becomes a link to the archived issue of that
publication and day when one exists (`link_bodies`), and stays plain text otherwise;
preflight names the cited days that have no archived issue (`unarchived_citations`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}

# "see [also] …" up to the closing parenthesis; no tags inside, so it also runs on HTML.
_REFERENCE = re.compile(r"\bsee\s+(?:also\s+)?(?P<body>[^()<>]+)\)", re.IGNORECASE)
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_DAYS = re.compile(
    rf"^(?:(?P<month>{_MONTH})\.?\s+)?(?P<first>\d{{1,2}})(?:\s*[-\u2013]\s*(?P<last>\d{{1,2}}))?$",
    re.IGNORECASE,
)
_NAME_PREFIX = re.compile(r"^(?:also\s+)?(?:the\s+)?", re.IGNORECASE)
_YEAR = re.compile(r"^(?:1[89]|20)\d\d$")


def normalize_name(name: str) -> str:
    """`The Monitor`, `the  monitor` and `Monitor` are one publication."""
    words = html.unescape(name).lower().split()
    if words and words[0] == "the":
        words = words[1:]
    return " ".join(words)


@dataclass
class Mention:
    """One linkable date in the text: `text[start:end]` is "October 7" or "10"."""

    publication: str
    start: int
    end: int
    month: int
    day: int
    year: int | None = None

    @property
    def date(self) -> date | None:
        if self.year is None:
            return None
        try:
            return date(self.year, self.month, self.day)
        except ValueError:
            return None


@dataclass
class CrossReference:
    """One publication in a reference, with every day it cites (ranges expanded)."""

    publication: str
    mentions: list[Mention] = field(default_factory=list)
    ranges: list[tuple[Mention, Mention | None]] = field(default_factory=list)

    @property
    def dates(self) -> list[date]:
        days: list[date] = []
        for first, last in self.ranges:
            if first.date is None:
                continue
            if last is None or last.date is None:
                days.append(first.date)
                continue
            days.extend(
                date.fromordinal(n)
                for n in range(first.date.toordinal(), last.date.toordinal() + 1)
            )
        return days


def _pieces(body: str, offset: int) -> Iterable[tuple[str, int]]:
    """Split on `sep` keeping each piece's position in the original text."""
    position = 0
    for part in re.split(r"([;,])", body):
        if part not in {";", ","}:
            stripped = part.strip()
            yield stripped, offset + position + (len(part) - len(part.lstrip()))
        else:
            yield part, offset + position
        position += len(part)


def parse_cross_references(text: str, default_year: int | None = None) -> list[CrossReference]:
    """Every cross-reference in `text`, in order.

    A year token applies to the dates before it that have none yet; dates left without a
    year take `default_year` (if given), else stay unresolved (`Mention.date` is None)."""
    references: list[CrossReference] = []
    for match in _REFERENCE.finditer(text):
        pending: list[Mention] = []
        current: CrossReference | None = None
        month: int | None = None
        expect_name = True
        for piece, start in _pieces(match["body"], match.start("body")):
            if piece == ";":
                expect_name = True
                continue
            if piece == "," or not piece:
                continue
            if _YEAR.match(piece):
                for mention in pending:
                    mention.year = int(piece)
                pending = []
                continue
            days = _DAYS.match(piece)
            if expect_name or days is None:
                name = _NAME_PREFIX.sub("", piece)
                if days is not None or not name or not name[0].isupper():
                    break  # not a reference we understand: leave the rest alone
                current = CrossReference(publication=normalize_name(name))
                references.append(current)
                month = None
                expect_name = False
                continue
            if days["month"]:
                month = MONTHS[days["month"].lower()]
            if month is None or current is None:
                break
            first_end = start + days.end("first")
            first = Mention(current.publication, start, first_end, month, int(days["first"]))
            last = None
            if days["last"]:
                last = Mention(
                    current.publication,
                    start + days.start("last"),
                    start + days.end("last"),
                    month,
                    int(days["last"]),
                )
            for mention in (first, last):
                if mention is not None:
                    current.mentions.append(mention)
                    pending.append(mention)
            current.ranges.append((first, last))
        if default_year is not None:
            for mention in pending:
                mention.year = default_year
    return [ref for ref in references if ref.mentions]


def mentions_in(text: str, default_year: int | None = None) -> list[Mention]:
    return [m for ref in parse_cross_references(text, default_year) for m in ref.mentions]


def html_link(label: str, url: str) -> str:
    return f'<a href="{html.escape(url)}">{label}</a>'


def markdown_link(label: str, url: str) -> str:
    return f"[{label}]({url})"


def link_cross_references(
    html_text: str,
    url_for: Callable[[Mention], str | None],
    default_year: int | None = None,
    link: Callable[[str, str], str] = html_link,
) -> str:
    """Wrap each date mention whose issue exists (`url_for` gives its URL) in a link
    (`link(label, url)`: an HTML anchor, or a Markdown link for Markdown text)."""
    mentions = sorted(mentions_in(html_text, default_year), key=lambda m: m.start)
    if not mentions:
        return html_text
    out: list[str] = []
    position = 0
    for mention in mentions:
        url = url_for(mention)
        if url is None:
            continue
        out.append(html_text[position : mention.start])
        out.append(link(html_text[mention.start : mention.end], url))
        position = mention.end
    out.append(html_text[position:])
    return "".join(out)


def cited_issue_urls(mentions: Iterable[Mention]) -> dict[tuple[str, date], str]:
    """The archive paths of the published issues that the mentions cite, keyed on
    (normalized publication name or slug, date); one query, none without a dated mention."""
    from issues.models import Issue

    dates = {m.date for m in mentions if m.date is not None}
    if not dates:
        return {}
    urls = {}
    for issue in (
        Issue.objects.published().filter(date__in=dates).select_related("publication", "volume")
    ):
        for key in (normalize_name(issue.publication.name), issue.publication.slug):
            urls[(key, issue.date)] = issue.get_absolute_url()
    return urls


def link_bodies(
    bodies: list[str],
    default_year: int | None,
    *,
    base_url: str = "",
    link: Callable[[str, str], str] = html_link,
) -> list[str]:
    """Each text with its cross-references linked to the archive (`base_url` in front of
    each path: SITE_URL for an email), the cited issues found in one query for all."""
    mentions = [m for body in bodies for m in mentions_in(body, default_year)]
    if not mentions:
        return list(bodies)
    urls = cited_issue_urls(mentions)

    def url_for(mention: Mention) -> str | None:
        path = urls.get((mention.publication, mention.date))
        return base_url + path if path else None

    return [link_cross_references(body, url_for, default_year, link) for body in bodies]


def unarchived_citations(bodies: list[str], default_year: int | None) -> list[str]:
    """The days the texts cite that no published issue answers, as written for a reader
    ("Monitor, December 9, 1999"), in order; a date without a year is named as such."""
    references = [r for body in bodies for r in parse_cross_references(body, default_year)]
    urls = cited_issue_urls(m for r in references for m in r.mentions)
    missing: list[str] = []
    for reference in references:
        name = reference.publication.title()
        undated = [m for m in reference.mentions if m.date is None]
        for day in reference.dates:
            if (reference.publication, day) not in urls:
                missing.append(f"{name}, {day:%B} {day.day}, {day.year}")
        for mention in undated:
            month = f"{date(2000, mention.month, 1):%B}"
            missing.append(f"{name}, {month} {mention.day} (no year, or no such day)")
    return list(dict.fromkeys(missing))
