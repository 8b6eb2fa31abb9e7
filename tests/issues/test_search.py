"""Archive search: stemmed, ranked, filtered and paged, on the database's own index."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from issues import search
from issues.models import Article, Issue
from issues.services import issue_mark_sent
from tests.factories import ArticleFactory, IssueFactory, PublicationFactory, VolumeFactory

SENT = Issue.Status.SENT


def published(volume=None, **fields) -> Issue:
    return IssueFactory(volume=volume or VolumeFactory(), status=SENT, articles=0, **fields)


def archive_queries(queries: CaptureQueriesContext) -> list[dict]:
    """The queries of a page for the archive: not the rate limiter's, which uses the
    database cache (and its savepoints) when there is no Redis."""
    return [q for q in queries.captured_queries if "issues_" in q["sql"]]


def results_of(page: str) -> list[str]:
    """The result links of a search page, in order."""
    return re.findall(r'<h3><a href="([^"#]+)#article-\d+"', page)


@pytest.fixture
def archive(db) -> dict[str, Issue]:
    monitor = VolumeFactory(number=6, year=2000)
    fortnight = VolumeFactory(
        publication=PublicationFactory(name="Fortnight in Review", slug="fortnight"),
        number=5,
        year=1999,
    )
    issues = {
        "sanctions": published(monitor, number=11, date=date(2000, 1, 17)),
        "oil": published(fortnight, number=3, date=date(1999, 12, 17)),
        "draft": IssueFactory(volume=monitor, number=12, articles=0),
    }
    ArticleFactory(
        issue=issues["sanctions"],
        headline="Washington weighs new sanctions",
        body="Congress debated sanctions against the regime for a second week.",
        regions="Russia, Central Asia",
    )
    ArticleFactory(
        issue=issues["oil"],
        headline="Pipeline politics",
        body="The oil pipeline through Georgia was sanctioned by the ministers.",
        regions="Caucasus",
    )
    ArticleFactory(issue=issues["draft"], body="Sanctions in a draft nobody has read.")
    return issues


def test_a_word_finds_its_other_forms(client, archive):
    page = client.get("/search/", {"q": "sanction"}).content.decode()

    assert results_of(page) == ["/monitor/6/11/", "/fortnight/5/3/"]  # headline hit first
    assert "<mark>sanctions</mark>" in page
    assert "<mark>sanctioned</mark>" in page
    assert "/monitor/6/12/" not in page  # a draft is not public


def test_a_result_links_to_its_article_on_the_issue_page(client, archive):
    issue = archive["sanctions"]
    ArticleFactory(issue=issue, position=0, headline="First", body="Nothing to see.")
    ArticleFactory(issue=issue, position=5, headline="Last", body="Grain prices.")

    page = client.get("/search/", {"q": "grain"}).content.decode()
    assert '<h3><a href="/monitor/6/11/#article-3">' in page
    issue_page = client.get("/monitor/6/11/").content.decode()
    assert 'id="article-3" aria-labelledby="article-3-title"' in issue_page
    assert '<h2 id="article-3-title">Last</h2>' in issue_page


def test_every_word_must_match(client, archive):
    page = client.get("/search/", {"q": "sanctions pipeline"}).content.decode()
    assert results_of(page) == ["/fortnight/5/3/"]


def test_a_quoted_phrase_keeps_its_words_together(client, archive):
    assert results_of(client.get("/search/", {"q": '"oil pipeline"'}).content.decode()) == [
        "/fortnight/5/3/"
    ]
    assert results_of(client.get("/search/", {"q": '"pipeline oil"'}).content.decode()) == []


def test_an_article_saved_later_is_found_and_an_edit_is_followed(client, archive):
    article = ArticleFactory(issue=archive["oil"], headline="", body="Zhvaniashvili spoke.")
    assert results_of(client.get("/search/", {"q": "Zhvaniashvili"}).content.decode()) == [
        "/fortnight/5/3/"
    ]

    article.body = "Shevardnadze spoke."
    article.save()
    assert results_of(client.get("/search/", {"q": "Zhvaniashvili"}).content.decode()) == []
    assert results_of(client.get("/search/", {"q": "Shevardnadze"}).content.decode()) == [
        "/fortnight/5/3/"
    ]
    article.delete()
    assert results_of(client.get("/search/", {"q": "Shevardnadze"}).content.decode()) == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"publication": "fortnight"}, ["/fortnight/5/3/"]),
        ({"year": "2000"}, ["/monitor/6/11/"]),
        ({"region": "central asia"}, ["/monitor/6/11/"]),
        ({"region": "Caucasus", "year": "1999"}, ["/fortnight/5/3/"]),
        ({"region": "Asia"}, []),  # a whole tag, not part of one
    ],
)
def test_filters(client, archive, filters, expected):
    page = client.get("/search/", {"q": "sanction", **filters}).content.decode()
    assert results_of(page) == expected


def test_an_issue_without_a_date_is_in_its_volumes_year(client, archive):
    undated = published(VolumeFactory(number=4, year=1998), number=1)
    ArticleFactory(issue=undated, body="Earlier sanctions.")

    page = client.get("/search/", {"q": "sanctions", "year": "1998"}).content.decode()

    assert results_of(page) == ["/monitor/4/1/"]
    assert '<option value="1998" selected>1998</option>' in page


def test_the_filters_offer_what_the_archive_holds(client, archive):
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/search/").content.decode()

    assert len(archive_queries(queries)) == 1

    assert '<option value="fortnight">Fortnight in Review</option>' in page
    assert '<option value="2000">2000</option>' in page
    assert '<option value="1999">1999</option>' in page
    assert "result" not in page


def test_results_are_paged_and_the_links_keep_the_query(client, archive):
    volume = VolumeFactory(number=7, year=2001)
    for number in range(1, search.PAGE_SIZE + 6):
        issue = published(volume, number=number, date=date(2001, 1, number % 28 + 1))
        ArticleFactory(issue=issue, headline="", body=f"Budget talks, round {number}.")

    with CaptureQueriesContext(connection) as queries:
        first = client.get("/search/", {"q": "budget", "year": "2001"}).content.decode()
    assert len(archive_queries(queries)) == 2  # the filters' choices, the page
    second = client.get("/search/", {"q": "budget", "year": "2001", "page": "2"}).content.decode()

    assert f"Results 1\N{EN DASH}{search.PAGE_SIZE} of {search.PAGE_SIZE + 5}" in first
    assert len(results_of(first)) == search.PAGE_SIZE
    assert 'href="?q=budget&amp;year=2001&amp;page=2" rel="next"' in first
    assert len(results_of(second)) == 5
    assert not set(results_of(first)) & set(results_of(second))
    assert 'href="?q=budget&amp;year=2001&amp;page=1" rel="prev"' in second
    assert 'value="budget"' in second  # the form shows the query again
    assert '<option value="2001" selected>2001</option>' in second


def test_a_page_past_the_end_says_where_they_end(client, archive):
    page = client.get("/search/", {"q": "sanction", "page": "3"}).content.decode()
    assert "There is no page 3 of these results; they end on page 1." in page


def test_newest_first_among_equal_ranks(client, db):
    volume = VolumeFactory()
    for number, day in ((1, 3), (2, 9), (3, 5)):
        issue = published(volume, number=number, date=date(2000, 1, day))
        ArticleFactory(issue=issue, headline="", body="Grain exports.")

    page = client.get("/search/", {"q": "grain"}).content.decode()

    assert results_of(page) == ["/monitor/6/2/", "/monitor/6/3/", "/monitor/6/1/"]


def test_the_snippet_and_the_headline_are_escaped_and_only_hits_are_marked(client, db):
    issue = published()
    ArticleFactory(
        issue=issue,
        headline="Kasyanov <em>bold</em>",
        body='Kasyanov said <script>alert(1)</script> & left <mark>here</mark> "twice".',
    )

    page = client.get("/search/", {"q": "Kasyanov"}).content.decode()

    snippet = re.search(r'<p class="snippet">(.*?)</p>', page)[1]
    # the text's tags come back escaped (SQLite) or dropped by ts_headline (PostgreSQL)
    assert "<script>" not in page
    assert "<em>bold" not in page
    assert "alert(1)" in snippet
    assert "&amp; left" in snippet
    assert "&quot;twice&quot;" in snippet
    assert '<p class="headline"><mark>Kasyanov</mark> &lt;em&gt;bold&lt;/em&gt;</p>' in page
    main = page[page.index('class="results"') :]
    assert re.findall(r"<mark>(.*?)</mark>", main) == ["Kasyanov", "Kasyanov"]


def test_the_query_is_escaped_where_the_page_repeats_it(client, db):
    page = client.get("/search/", {"q": '<b>Kasyanov</b> "'}).content.decode()

    assert "<b>" not in page
    assert "“&lt;b&gt;Kasyanov&lt;/b&gt; &quot;”" in page
    assert 'value="&lt;b&gt;Kasyanov&lt;/b&gt; &quot;"' in page


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("?!…", "punctuation alone finds nothing"),
        ('"', "punctuation alone finds nothing"),
        ("*", "punctuation alone finds nothing"),
        ("x" * 201, "Use at most 200 characters (this has 201)."),
        (" ".join(["word"] * 11), "Use at most 10 words."),
        ("sanctions\x00", "Null characters are not allowed."),
    ],
)
def test_bad_input_gives_a_message(client, archive, q, message):
    response = client.get("/search/", {"q": q})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'role="alert"' in response.content.decode()


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("sanction*", ["/monitor/6/11/", "/fortnight/5/3/"]),
        ('"sanctions', ["/monitor/6/11/", "/fortnight/5/3/"]),
        ("-pipeline sanctions", ["/fortnight/5/3/"]),  # a word, not "without"
        ("^sanctions:headline", []),  # "headline" is a word to find, not a column
        ("NEAR(sanctions pipeline)", []),  # "near" is a word to find
        ("sanctions & | ! ( ) <-> :* + {}", ["/monitor/6/11/", "/fortnight/5/3/"]),
        ('"oil pipeline" "', ["/fortnight/5/3/"]),
        ("'pipeline'", ["/fortnight/5/3/"]),
    ],
)
def test_search_syntax_is_plain_text(client, archive, q, found):
    response = client.get("/search/", {"q": q})

    assert response.status_code == 200
    assert results_of(response.content.decode()) == found


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "sanctions", "page": "0"}, "greater than or equal to 1"),
        ({"q": "sanctions", "page": "x"}, "Enter a whole number."),
        ({"q": "sanctions", "page": "100000"}, "Results go up to page 500 at most."),
        ({"q": "sanctions", "year": "1066"}, "Select a valid choice."),
        ({"q": "sanctions", "publication": "nosuch"}, "Select a valid choice."),
        ({"q": "sanctions", "region": "%_"}, "letters and digits"),
        ({"q": "", "region": "Caucasus"}, "Type the words to find."),
    ],
)
def test_bad_filters_give_a_message(client, archive, params, message):
    response = client.get("/search/", params)
    assert response.status_code == 200
    assert message in response.content.decode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL drops stop words")
def test_only_stop_words_says_so(client, archive):
    page = client.get("/search/", {"q": "the of and"}).content.decode()
    assert "Those words are too common to search for" in page


def test_empty_search_shows_only_the_form(client, archive):
    page = client.get("/search/").content.decode()
    assert 'role="search"' in page
    assert "results-title" not in page
    assert 'role="alert"' not in page


@override_settings(SEARCH_RATE="3/m")
def test_search_is_rate_limited_per_client(client, archive):
    answers = [
        client.get("/search/", {"q": "sanctions"}, REMOTE_ADDR="192.0.2.7").status_code
        for _ in range(4)
    ]
    other = client.get("/search/", {"q": "sanctions"}, REMOTE_ADDR="192.0.2.8")

    assert answers == [200, 200, 200, 429]
    assert other.status_code == 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the GIN index is PostgreSQL's")
def test_the_query_plan_uses_the_gin_index(archive):
    # an archive of some size, its statistics known, as autovacuum keeps them
    sent = archive["sanctions"]
    issues = Issue.objects.bulk_create(
        Issue(publication=sent.publication, volume=sent.volume, number=100 + n, status=SENT)
        for n in range(200)
    )
    Article.objects.bulk_create(
        Article(issue=issue, position=n, body=f"Grain harvest report {n}.")
        for issue in issues
        for n in range(10)
    )
    with connection.cursor() as cursor:
        # what autovacuum does: the index's pending entries merged, the statistics taken
        cursor.execute("SELECT gin_clean_pending_list('issues_article_search_vector')")
        cursor.execute("ANALYZE issues_issue, issues_article")
    with CaptureQueriesContext(connection) as queries:
        search.search(terms=search.terms("sanction pipeline"), region="Caucasus")
    (statement,) = queries.captured_queries
    with connection.cursor() as cursor:
        # a handful of rows: a sequential scan would be cheaper, so forbid it
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + statement["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Bitmap Index Scan on issues_article_search_vector" in plan, plan


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 table is SQLite's")
def test_the_fts_table_is_kept_by_triggers(archive):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'issues_article'"
        )
        triggers = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM issues_article_fts WHERE issues_article_fts MATCH 'sanction'"
        )
        matches = cursor.fetchone()[0]

    assert triggers == [
        "issues_article_fts_delete",
        "issues_article_fts_insert",
        "issues_article_fts_update",
    ]
    assert matches == Article.objects.filter(body__icontains="sanction").count() == 3


def test_a_result_page_is_kept_until_the_archive_changes(client, archive):
    first = client.get("/search/", {"q": "sanction"})
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/search/", {"q": "sanction"})

    assert archive_queries(queries) == []
    assert again.content == first.content


def test_sending_an_issue_shows_it_in_kept_results_at_once(client, archive):
    sending = IssueFactory(
        volume=archive["sanctions"].volume, number=13, status=Issue.Status.SENDING, articles=0
    )
    ArticleFactory(issue=sending, body="Fresh sanctions.")
    assert "/monitor/6/13/" not in results_of(
        client.get("/search/", {"q": "fresh"}).content.decode()
    )

    issue_mark_sent(issue=sending)

    assert results_of(client.get("/search/", {"q": "fresh"}).content.decode()) == ["/monitor/6/13/"]


def test_a_publication_taken_down_leaves_the_kept_results(client, archive):
    assert "/fortnight/5/3/" in results_of(client.get("/search/", {"q": "oil"}).content.decode())

    fortnight = archive["oil"].publication
    fortnight.active = False
    fortnight.save()

    assert results_of(client.get("/search/", {"q": "oil"}).content.decode()) == []


@pytest.mark.django_db(transaction=True)
def test_the_version_changes_again_when_the_transaction_commits(client):
    from django.core.cache import cache
    from django.db import transaction

    seen = []
    with transaction.atomic():
        ArticleFactory(issue=published(), body="Committed later.")
        seen.append(cache.get(search.VERSION_KEY))
    seen.append(cache.get(search.VERSION_KEY))

    assert None not in seen
    assert seen[0] != seen[1]


@pytest.mark.django_db(transaction=True)
def test_the_migration_indexes_the_articles_already_there():
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("issues", "0005_publication_tracking_choice")])
    try:
        ArticleFactory(issue=published(), body="Prewar sanctions.")  # no index to keep
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    found = search.search(terms=search.terms("sanction"))

    assert [hit.issue.number for hit in found.hits] == [Issue.objects.get().number]
