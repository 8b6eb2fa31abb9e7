"""Full-text search of the public archive: ranked articles of sent issues, with snippets.

The index is the database's own (migration 0006): on PostgreSQL a stored, weighted
tsvector per article with a GIN index and English stemming, on SQLite an FTS5 table
with the porter stemmer, so "sanction" finds "sanctions" on both. One function per
backend runs one statement that finds, ranks, counts, pages and cuts the snippets.

What a reader types never reaches either engine as syntax: it is reduced to words
(letters and digits) and "quoted phrases", each passed as a quoted phrase, so `*`, `-`,
`OR`, `NEAR` or a stray `"` are text, not operators. Every term must match.

Snippets come back with control characters around the hits; `marked` escapes all of the
text and turns only those characters into <mark> elements."""

from __future__ import annotations

import hashlib
import html
import re
import uuid
from dataclasses import dataclass
from datetime import date

from django import forms
from django.core.cache import cache, caches
from django.core.validators import RegexValidator
from django.db import connection, transaction
from django.db.models import F, IntegerField
from django.db.models.functions import Coalesce, ExtractYear
from django.utils.safestring import SafeString, mark_safe

from issues.models import Article, Issue, Publication, Volume

PAGE_SIZE = 20
MAX_QUERY_CHARS = 200
MAX_WORDS = 10
MAX_PAGE = 500
SNIPPET_WORDS = 30

# Result pages are kept per web process under the archive's version, a random token in
# the shared cache that every change to what the archive shows replaces (archive_changed);
# the time limit only bounds what a change made around the ORM (a queryset update, SQL)
# leaves behind.
VERSION_KEY = "archive-version"
SEARCH_PAGE_SECONDS = 600

_MARK_START, _MARK_END = "\x02", "\x03"
# A phrase in double quotes, or one word: runs of letters and digits (no underscore).
_TERM = re.compile(r'"([^"]*)"|([^\W_]+)')
_WORD = re.compile(r"[^\W_]+")
_MD_ESCAPE = re.compile(r"\\([\\`*_\[\]#>+\-.)!])")
_REGION = re.compile(r"^[^\W_]+(?:[\s-][^\W_]+)*$")


def terms(q: str) -> list[list[str]]:
    """The words and phrases of a query, each term a list of words: `oil "gas price"`
    gives [["oil"], ["gas", "price"]]. Punctuation and operators are dropped."""
    found = []
    for match in _TERM.finditer(q):
        words = _WORD.findall(match[1]) if match[1] is not None else [match[2]]
        if words:
            found.append([w.lower() for w in words])
    return found


def region_key(region: str) -> str:
    """A region tag as the filter compares it: lower case, no spaces ("Central Asia" and
    "central asia" are one tag)."""
    return "".join(region.lower().split())


def marked(text: str) -> SafeString:
    """Escape a snippet (Markdown escapes undone first), then turn the hit markers into
    <mark> elements: the only markup in the result."""
    text = html.escape(_MD_ESCAPE.sub(r"\1", text))
    return mark_safe(  # noqa: S308 - escaped just above
        text.replace(_MARK_START, "<mark>").replace(_MARK_END, "</mark>")
    )


def facets(version: str) -> tuple[list[tuple[str, str]], list[int]]:
    """The publications and the years that have sent issues: the filters' choices.

    One query, kept per web process for the archive's `version`. An issue without a
    date counts in its volume's year."""
    key = f"search-facets:{version}"
    kept = caches["pages"].get(key)
    if kept is None:
        kept = _facets()
        caches["pages"].set(key, kept, SEARCH_PAGE_SECONDS)
    return kept


def _facets() -> tuple[list[tuple[str, str]], list[int]]:
    rows = (
        Issue.objects.published()
        .annotate(
            year=Coalesce(ExtractYear("date"), F("volume__year"), output_field=IntegerField())
        )
        .values_list("publication__slug", "publication__name", "year")
        .order_by()
        .distinct()
    )
    publications, years = {}, set()
    for slug, name, year in rows:
        publications[slug] = name
        if year is not None:
            years.add(year)
    ordered = sorted(publications.items(), key=lambda item: item[1].lower())
    return ordered, sorted(years, reverse=True)


class SearchForm(forms.Form):
    """The search page's GET parameters; a bad one gives a message, never an error page."""

    q = forms.CharField(
        label="Words to find",
        required=False,
        max_length=MAX_QUERY_CHARS,
        error_messages={
            "max_length": "Use at most %(limit_value)d characters (this has %(show_value)d)."
        },
    )
    publication = forms.ChoiceField(label="Publication", required=False)
    year = forms.TypedChoiceField(label="Year", required=False, coerce=int, empty_value=None)
    region = forms.CharField(
        label="Region",
        required=False,
        max_length=60,
        validators=[
            RegexValidator(_REGION, "A region is letters and digits, with spaces or hyphens.")
        ],
    )
    page = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_PAGE,
        error_messages={"max_value": f"Results go up to page {MAX_PAGE} at most."},
    )

    def __init__(self, data, *, publications: list[tuple[str, str]], years: list[int]) -> None:
        super().__init__(data)
        self.fields["publication"].choices = [("", "All publications"), *publications]
        self.fields["year"].choices = [("", "Any year"), *((y, str(y)) for y in years)]

    def clean(self) -> dict:
        data = super().clean()
        q = " ".join(data.get("q", "").split())
        data["q"] = q
        data["terms"] = terms(q)
        if not q:
            if self.has_filters():
                self.add_error("q", "Type the words to find.")
        elif not data["terms"]:
            self.add_error("q", "Type words to find: punctuation alone finds nothing.")
        elif sum(len(t) for t in data["terms"]) > MAX_WORDS:
            self.add_error("q", f"Use at most {MAX_WORDS} words.")
        return data

    def has_filters(self) -> bool:
        return any(self.data.get(name) for name in ("publication", "year", "region"))


@dataclass
class Hit:
    issue: Issue  # with its publication and volume, unsaved: enough for its URL and title
    url: str  # the article on the issue's page
    headline: SafeString
    snippet: SafeString
    regions: list[str]


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


@dataclass
class Results:
    hits: list[Hit]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return page_count(self.total)

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1

    @property
    def last(self) -> int:
        return self.first + len(self.hits) - 1


def search(
    *,
    terms: list[list[str]],
    publication: str = "",
    year: int | None = None,
    region: str = "",
    page: int = 1,
) -> Results:
    """One page of the articles of published issues that hold every term, best first.

    One query on either database."""
    filters, params = _filters(publication=publication, year=year, region=region)
    offset = (page - 1) * PAGE_SIZE
    if connection.vendor == "postgresql":
        rows = search_postgresql(terms, filters, params, offset)
    else:
        rows = search_sqlite(terms, filters, params, offset)
    hits = [_hit(row) for row in rows]
    return Results(hits=hits, total=rows[0][-1] if rows else 0, page=page)


def _filters(*, publication: str, year: int | None, region: str) -> tuple[str, list]:
    """SQL conditions on the tables aliased a (article), i (issue), v (volume) and
    p (publication), shared by both backends; only published issues."""
    sql = ["i.status = %s", "p.active"]
    params: list[object] = [Issue.Status.SENT]
    if publication:
        sql.append("p.slug = %s")
        params.append(publication)
    if year is not None:
        sql.append("(i.date >= %s AND i.date < %s OR i.date IS NULL AND v.year = %s)")
        params += [date(year, 1, 1), date(year + 1, 1, 1), year]
    if region:
        # regions is "Russia, Central Asia": compared as ",russia,centralasia,"
        sql.append("(',' || replace(lower(a.regions), ' ', '') || ',') LIKE %s")
        params.append(f"%,{region_key(region)},%")
    return " AND ".join(sql), params


# The article's place in its issue, as the issue page numbers its sections (#article-N).
_PLACE = (
    "(SELECT count(*) FROM issues_article b WHERE b.issue_id = a.issue_id"
    " AND (b.position < a.position OR b.position = a.position AND b.id <= a.id))"
)
_COLUMNS = f"i.id, i.number, i.date, i.title, v.number, v.year, p.slug, p.name, a.regions, {_PLACE}"
_JOINS = (
    "JOIN issues_issue i ON i.id = a.issue_id "
    "JOIN issues_volume v ON v.id = i.volume_id "
    "JOIN issues_publication p ON p.id = i.publication_id"
)


def search_postgresql(terms: list[list[str]], filters: str, params: list, offset: int) -> list:
    """websearch_to_tsquery over quoted phrases: every term, stemmed, stop words dropped;
    ranked by ts_rank over the weighted vector, then newest first. The GIN index finds
    the rows; ts_headline runs only on the page's rows."""
    query = " ".join(f'"{" ".join(words)}"' for words in terms)
    options = (
        f"StartSel={_MARK_START}, StopSel={_MARK_END}, "
        f"MaxWords={SNIPPET_WORDS}, MinWords={SNIPPET_WORDS // 2}"
    )
    # The tsquery is written out where it is used, not taken from a CTE: a constant
    # to the planner, so that the GIN index can answer the @@.
    tsquery = "websearch_to_tsquery('english', %s)"
    sql = f"""
        WITH hits AS (
            SELECT a.id, ts_rank(a.search_vector, {tsquery}) AS rank, i.date,
                   count(*) OVER () AS total
            FROM issues_article a {_JOINS}
            WHERE a.search_vector @@ {tsquery} AND {filters}
            ORDER BY rank DESC, i.date DESC NULLS LAST, a.id DESC
            LIMIT %s OFFSET %s
        )
        SELECT {_COLUMNS},
               ts_headline('english', a.headline, {tsquery}, %s),
               ts_headline('english', a.body, {tsquery}, %s),
               hits.total
        FROM hits JOIN issues_article a ON a.id = hits.id {_JOINS}
        ORDER BY hits.rank DESC, hits.date DESC NULLS LAST, a.id DESC
    """  # noqa: S608 - the f-string parts are constants; values go as parameters
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                query,
                query,
                *params,
                PAGE_SIZE,
                offset,
                query,
                f"HighlightAll=true, {options}",
                query,
                options,
            ],
        )
        return cursor.fetchall()


def search_sqlite(terms: list[list[str]], filters: str, params: list, offset: int) -> list:
    """FTS5 MATCH over quoted phrases (implicit AND), ranked by bm25 with the headline
    weighted over the summary over the body, then newest first."""
    query = " ".join(f'"{" ".join(words)}"' for words in terms)
    # FTS5's functions work only in the statement that scans the FTS table by MATCH:
    # the matches first, then the page's rows, then the page's snippets by a second MATCH.
    sql = f"""
        WITH matches AS MATERIALIZED (
            SELECT rowid AS id, bm25(issues_article_fts, 10.0, 4.0, 1.0) AS rank
            FROM issues_article_fts WHERE issues_article_fts MATCH %s
        ),
        hits AS MATERIALIZED (
            SELECT a.id, matches.rank, i.date, count(*) OVER () AS total
            FROM matches JOIN issues_article a ON a.id = matches.id {_JOINS}
            WHERE {filters}
            ORDER BY matches.rank, i.date DESC, a.id DESC
            LIMIT %s OFFSET %s
        )
        SELECT {_COLUMNS},
               highlight(issues_article_fts, 0, char(2), char(3)),
               snippet(issues_article_fts, 2, char(2), char(3), '…', {SNIPPET_WORDS}),
               hits.total
        FROM issues_article_fts CROSS JOIN hits JOIN issues_article a ON a.id = hits.id
        {_JOINS}
        WHERE issues_article_fts MATCH %s AND issues_article_fts.rowid = hits.id
        ORDER BY hits.rank, hits.date DESC, a.id DESC
    """  # noqa: S608 - the f-string parts are constants; values go as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [query, *params, PAGE_SIZE, offset, query])
        return cursor.fetchall()


def only_stop_words(terms: list[list[str]]) -> bool:
    """Whether PostgreSQL drops every term as too common to index ("the", "of")."""
    if connection.vendor != "postgresql" or not terms:
        return False
    query = " ".join(f'"{" ".join(words)}"' for words in terms)
    with connection.cursor() as cursor:
        cursor.execute("SELECT numnode(websearch_to_tsquery('english', %s))", [query])
        return cursor.fetchone()[0] == 0


def _hit(row: tuple) -> Hit:
    (issue_id, number, issue_date, title, volume, year, slug, name, regions, place) = row[:10]
    headline, snippet = row[10], row[11]
    if isinstance(issue_date, str):  # SQLite gives the column's text
        issue_date = date.fromisoformat(issue_date)
    publication = Publication(slug=slug, name=name)
    issue = Issue(
        id=issue_id,
        number=number,
        date=issue_date,
        title=title,
        publication=publication,
        volume=Volume(number=volume, year=year, publication=publication),
    )
    return Hit(
        issue=issue,
        url=f"{issue.get_absolute_url()}#article-{place}",
        headline=marked(headline or ""),
        snippet=marked(snippet or ""),
        regions=Article(regions=regions or "").region_list,
    )


def archive_version() -> str:
    """The archive's version: a token that changes whenever what it shows may have."""
    return cache.get_or_set(VERSION_KEY, lambda: uuid.uuid4().hex, timeout=None)


def page_key(version: str, query_string: str) -> str:
    """The cache key of a search page: the archive's version and the request's query."""
    digest = hashlib.sha256(query_string.encode()).hexdigest()
    return f"search:{version}:{digest}"


def archive_changed(**kwargs: object) -> None:
    """What the archive shows may have changed: no search page kept before is served
    again. The version changes now (this transaction's own reads) and again once the
    transaction commits, since a page rendered in between saw the old rows. A signal
    receiver, and called by the workflow when an issue is sent (a queryset update sends
    no signal)."""

    def change() -> None:
        cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)

    change()
    transaction.on_commit(change)
