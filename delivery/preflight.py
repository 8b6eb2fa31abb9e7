"""What must hold before an issue goes out (SPEC §6): at least one article, HTML under
100 KB (Gmail clips at 102 KB), a plain-text part, the unsubscribe link in the body and
the List-Unsubscribe header, and links to archive pages that lead to published issues.

A warning is a check that passes (`ok`, so it never stops a send) but that the editor
should read before approving: cross-references to days with no archived issue, which
stay plain text on the page and in the email."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q
from django.urls import Resolver404, resolve

from delivery.rendering import HTML_LIMIT, RenderedIssue, sample_recipient
from issues.crossrefs import unarchived_citations
from issues.models import Issue


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False


def preflight(issue: Issue) -> list[Check]:
    """What must hold before an issue goes out (SPEC §6)."""
    bodies = list(issue.articles.order_by().values_list("body", "body_html"))
    articles = len(bodies)
    if not articles:
        return [Check("articles", False, "The issue has no article.")]
    rendered = RenderedIssue(issue)
    size = rendered.html_size()
    sample = sample_recipient()
    raw = rendered.as_bytes(sample)
    return [
        Check("articles", True, f"{articles} article{'s' if articles != 1 else ''}."),
        Check(
            "html_size",
            size < HTML_LIMIT,
            f"HTML is {size / 1024:.1f} KB (must stay under {HTML_LIMIT // 1024} KB).",
        ),
        Check(
            "text_part",
            b"Content-Type: text/plain" in raw and bool(rendered.text_source.strip()),
            "Plain-text part present.",
        ),
        Check(
            "unsubscribe_link",
            "@@MONITOR_UNSUBSCRIBE_URL@@" in rendered.html_source
            and "@@MONITOR_UNSUBSCRIBE_URL@@" in rendered.text_source
            and b"List-Unsubscribe: <" in raw,
            "Unsubscribe link in the body and the List-Unsubscribe header.",
        ),
        archive_links_check(issue, [html for _, html in bodies]),
        cross_references_check(issue, [markdown for markdown, _ in bodies]),
    ]


def cross_references_check(issue: Issue, bodies: list[str]) -> Check:
    """Cross-references ("see the Monitor, October 7, 1999") in the articles' Markdown
    `bodies` to days that no published issue answers: a warning, since the archive may
    simply not hold that back issue."""
    missing = unarchived_citations(bodies, issue.date.year if issue.date else None)
    if missing:
        return Check(
            "cross_references",
            True,
            "Cited, but not in the archive (shown without a link): " + "; ".join(missing) + ".",
            warning=True,
        )
    return Check("cross_references", True, "Every cross-reference leads to an archived issue.")


_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def archive_links_check(issue: Issue, bodies: list[str]) -> Check:
    """Links in the articles (their rendered `bodies`) to issue pages of this site
    (`SITE_URL/<pub>/<vol>/<num>/`) must lead to a published issue: a reader must not
    land on a 404. A link to the issue itself passes, since its page appears when it is
    sent."""
    site = urlsplit(settings.SITE_URL)
    wanted: dict[tuple[str, int, int], str] = {}
    for body in bodies:
        for href in _HREF.findall(body):
            url = urlsplit(html.unescape(href))
            if url.netloc and url.netloc != site.netloc:
                continue
            if not url.path.startswith("/"):
                continue
            try:
                match = resolve(url.path)
            except Resolver404:
                continue
            if match.view_name == "issues:issue":
                key = (match.kwargs["pub"], match.kwargs["volume"], match.kwargs["number"])
                wanted.setdefault(key, href)
    if not wanted:
        return Check("archive_links", True, "No link to an archive page of this site.")
    own = (issue.publication.slug, issue.volume.number, issue.number)
    condition = Q(pk__in=[])
    for pub, volume, number in wanted:
        condition |= Q(publication__slug=pub, volume__number=volume, number=number)
    found = set(
        Issue.objects.published()
        .filter(condition)
        .values_list("publication__slug", "volume__number", "number")
    )
    missing = [href for key, href in wanted.items() if key not in found and key != own]
    if missing:
        return Check(
            "archive_links",
            False,
            "Links to archive pages that do not exist: " + ", ".join(missing),
        )
    return Check("archive_links", True, f"{len(wanted)} archive link(s) lead to published issues.")
