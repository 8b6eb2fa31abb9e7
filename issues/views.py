"""The public archive (SPEC section 5): sent issues only, a fixed number of queries each."""

from __future__ import annotations

from csp.decorators import csp_update
from django.conf import settings
from django.core.cache import caches
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe
from django.views.decorators.cache import cache_page
from django_ratelimit.decorators import ratelimit

from issues import search as archive_search
from issues.crossrefs import link_bodies
from issues.dating import estimated_dates
from issues.markdown import IMAGE_SOURCES
from issues.models import Article, Issue, Publication, Volume

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


def archive(request: HttpRequest, pub: str, volume: int | None = None) -> HttpResponse:
    """A publication's sent issues, one volume a page (the latest first), with links to
    the other volumes and each issue's date, estimated where it is missing.

    Three queries: the volumes, the volume's issues, their headlines."""
    volumes = list(
        Volume.objects.filter(
            publication__slug=pub,
            publication__active=True,
            issues__status=Issue.Status.SENT,
        )
        .select_related("publication")
        .annotate(sent=Count("issues"))
        .order_by("-number")
    )
    if not volumes:
        publication = get_object_or_404(Publication, slug=pub, active=True)
        if volume is not None:
            raise Http404("No such volume.")
        context = {"publication": publication, "volumes": [], "current": None, "issues": []}
        return render(request, "issues/archive.html", context)
    publication = volumes[0].publication
    if volume is None:
        current = volumes[0]
    else:
        current = next((v for v in volumes if v.number == volume), None)
        if current is None:
            raise Http404("No such volume.")
    issues = list(Issue.objects.sent().filter(volume=current).prefetch_related(HEADLINES))
    estimates = estimated_dates(issues)
    for issue in issues:
        issue.publication, issue.volume = publication, current
        issue.estimated_date = estimates.get(issue.pk)
    position = volumes.index(current)
    return render(
        request,
        "issues/archive.html",
        {
            "publication": publication,
            "volumes": volumes,
            "current": current,
            "issues": issues,
            "newer": volumes[position - 1] if position > 0 else None,
            "older": volumes[position + 1] if position + 1 < len(volumes) else None,
        },
    )


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
    issues) the cited issues, whose dates become links, as in the email."""
    issue = get_object_or_404(
        Issue.objects.published().select_related("publication", "volume"),
        publication__slug=pub,
        volume__number=volume,
        number=number,
    )
    articles = list(issue.articles.all())
    default_year = issue.date.year if issue.date else None
    bodies = link_bodies([a.body_html for a in articles], default_year)
    for article, html in zip(articles, bodies, strict=True):
        article.html = mark_safe(html)  # noqa: S308 - sanitized by render_markdown, links escaped
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


def search_rate(group: str, request: HttpRequest) -> str:
    """django-ratelimit's rate for searches, read when asked (settings.SEARCH_RATE)."""
    return settings.SEARCH_RATE


@ratelimit(key="ip", rate=search_rate, method="GET", block=True)
def search(request: HttpRequest) -> HttpResponse:
    """The archive's search page: the form, and one page of ranked results.

    Two queries: the filters' choices (kept while the archive does not change) and the
    results, one more when there are none, to say why; none for a page kept since the
    archive last changed. The query and the filters stay in the URL, page links
    included."""
    version = archive_search.archive_version()
    key = archive_search.page_key(version, request.GET.urlencode())
    kept = caches["pages"].get(key)
    if kept is not None:
        return HttpResponse(kept)
    publications, years = archive_search.facets(version)
    form = archive_search.SearchForm(request.GET or None, publications=publications, years=years)
    results = None
    message = ""
    if form.is_bound and form.is_valid() and form.cleaned_data["q"]:
        found = form.cleaned_data
        page = found["page"] or 1
        query = {
            "terms": found["terms"],
            "publication": found["publication"],
            "year": found["year"],
            "region": found["region"],
        }
        results = archive_search.search(**query, page=page)
        if not results.hits and page > 1:
            total = archive_search.search(**query).total
            message = f"There is no page {page} of these results" + (
                f"; they end on page {archive_search.page_count(total)}." if total else "."
            )
        elif not results.hits and archive_search.only_stop_words(found["terms"]):
            message = "Those words are too common to search for; add a more specific one."
    response = render(
        request,
        "issues/search.html",
        {
            "form": form,
            "q": form.cleaned_data.get("q", "") if form.is_bound else "",
            "results": results,
            "message": message,
            "filtered": form.is_bound and form.has_filters(),
        },
    )
    caches["pages"].set(key, response.content, archive_search.SEARCH_PAGE_SECONDS)
    return response
