"""The public archive (SPEC section 5): sent issues only, a fixed number of queries each."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date
from itertools import groupby

from csp.decorators import csp_update
from django.conf import settings
from django.db.models import OuterRef, Prefetch, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.cache import cache_page

from issues.crossrefs import Mention, link_cross_references, mentions_in, normalize_name
from issues.markdown import IMAGE_SOURCES
from issues.models import Article, Issue, Publication

SEARCH_LIMIT = 50
SNIPPET_WORDS = 30
HEADLINES = Prefetch("articles", queryset=Article.objects.only("id", "issue_id", "headline"))


def home(request: HttpRequest) -> HttpResponse:
    """Latest issue of each active publication, and the subscribe form. Three queries."""
    latest = (
        Issue.objects.sent()
        .filter(publication=OuterRef("pk"))
        .order_by("-volume__number", "-number")
        .values("id")[:1]
    )
    publications = list(
        Publication.objects.filter(active=True).annotate(latest_id=Subquery(latest))
    )
    ids = [p.latest_id for p in publications if p.latest_id]
    issues = {}
    if ids:
        issues = {
            i.id: i
            for i in Issue.objects.filter(id__in=ids)
            .select_related("volume")
            .prefetch_related(HEADLINES)
        }
    for publication in publications:
        publication.latest_issue = issues.get(publication.latest_id)
        if publication.latest_issue is not None:
            publication.latest_issue.publication = publication
    return render(request, "issues/home.html", {"publications": publications})


def archive(request: HttpRequest, pub: str) -> HttpResponse:
    """Every sent issue of a publication, grouped by volume. Three queries."""
    publication = get_object_or_404(Publication, slug=pub, active=True)
    issues = list(
        Issue.objects.sent()
        .filter(publication=publication)
        .select_related("volume")
        .prefetch_related(HEADLINES)
    )
    for issue in issues:
        issue.publication = publication
    volumes = [(volume, list(group)) for volume, group in groupby(issues, key=lambda i: i.volume)]
    return render(request, "issues/archive.html", {"publication": publication, "volumes": volumes})


def _issue_urls(mentions: list[Mention]) -> dict[tuple[str, date], str]:
    """URLs of the sent issues that the mentions cite, in one query."""
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


# A sent issue does not change, but its footer (masthead, contact details) and its
# cross-reference links (other issues being sent) may: a minute of staleness buys an
# archive that serves a popular issue without touching the database.
ISSUE_PAGE_SECONDS = 60


# Articles may show images from elsewhere; outside cache_page, so that cached pages say so too.
@csp_update({"img-src": list(IMAGE_SOURCES)})
@cache_page(ISSUE_PAGE_SECONDS, cache="pages")
def issue_detail(request: HttpRequest, pub: str, volume: int, number: int) -> HttpResponse:
    """One sent issue with every article, the masthead and the publisher's footer.

    Four queries: the issue, its articles, the masthead, and (when the text cites other
    issues) the cited issues, whose dates become links."""
    issue = get_object_or_404(
        Issue.objects.published().select_related("publication", "volume"),
        publication__slug=pub,
        volume__number=volume,
        number=number,
    )
    articles = list(issue.articles.all())
    default_year = issue.date.year if issue.date else None
    mentions = [m for a in articles for m in mentions_in(a.body_html, default_year)]
    urls = _issue_urls(mentions) if mentions else {}
    for article in articles:
        article.html = mark_safe(  # noqa: S308 - sanitized by render_markdown, links escaped
            link_cross_references(
                article.body_html, lambda m: urls.get((m.publication, m.date)), default_year
            )
        )
    return render(
        request,
        "issues/issue.html",
        {
            "issue": issue,
            "publication": issue.publication,
            "articles": articles,
            "masthead": list(issue.publication.masthead.all()),
        },
    )


@dataclass
class SearchResult:
    article: Article
    snippet: SafeString


_MARK_START, _MARK_END = "\x02", "\x03"
_MD_ESCAPE = re.compile(r"\\([\\`*_\[\]#>+\-.)!])")


def _marked(text: str) -> SafeString:
    """Escape a snippet, then turn the match markers into <mark> elements."""
    text = html.escape(_MD_ESCAPE.sub(r"\1", text))
    return mark_safe(  # noqa: S308 - escaped just above
        text.replace(_MARK_START, "<mark>").replace(_MARK_END, "</mark>")
    )


def _simple_snippet(body: str, words: list[str]) -> SafeString:
    tokens = body.split()
    lowered = [t.lower() for t in tokens]
    hit = next((i for i, t in enumerate(lowered) if any(w in t for w in words)), 0)
    start = max(0, hit - SNIPPET_WORDS // 3)
    chosen = tokens[start : start + SNIPPET_WORDS]
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    text = " ".join(chosen)
    text = pattern.sub(lambda m: f"{_MARK_START}{m[0]}{_MARK_END}", text)
    prefix = "… " if start else ""
    suffix = " …" if start + SNIPPET_WORDS < len(tokens) else ""
    return _marked(prefix + text + suffix)


def _search(q: str) -> list[SearchResult]:
    articles = Article.objects.filter(
        issue__status=Issue.Status.SENT, issue__publication__active=True
    ).select_related("issue__publication", "issue__volume")
    if settings.USING_POSTGRES:
        from django.contrib.postgres.search import (
            SearchHeadline,
            SearchQuery,
            SearchRank,
            SearchVector,
        )

        vector = (
            SearchVector("headline", weight="A", config="english")
            + SearchVector("summary", weight="B", config="english")
            + SearchVector("body", weight="C", config="english")
        )
        query = SearchQuery(q, search_type="websearch", config="english")
        found = (
            articles.annotate(document=vector)
            .filter(document=query)
            .annotate(
                rank=SearchRank(vector, query),
                snippet=SearchHeadline(
                    "body",
                    query,
                    config="english",
                    start_sel=_MARK_START,
                    stop_sel=_MARK_END,
                    max_words=SNIPPET_WORDS,
                    min_words=SNIPPET_WORDS // 2,
                ),
            )
            .order_by("-rank", "-issue__date", "-issue__id")[:SEARCH_LIMIT]
        )
        return [SearchResult(a, _marked(a.snippet)) for a in found]

    words = [w.lower() for w in re.findall(r"\w+", q)][:10]
    if not words:
        return []
    condition = Q()
    for word in words:
        condition &= (
            Q(headline__icontains=word) | Q(summary__icontains=word) | Q(body__icontains=word)
        )
    found = articles.filter(condition).order_by(
        "-issue__date", "-issue__volume__number", "-issue__number"
    )[:SEARCH_LIMIT]
    return [SearchResult(a, _simple_snippet(a.body, words)) for a in found]


def search(request: HttpRequest) -> HttpResponse:
    """Full-text search over sent issues: PostgreSQL's on PostgreSQL, words in SQLite."""
    q = " ".join(request.GET.get("q", "").split())[:200]
    results = _search(q) if q else []
    return render(
        request,
        "issues/search.html",
        {"q": q, "results": results, "limit": SEARCH_LIMIT},
    )
