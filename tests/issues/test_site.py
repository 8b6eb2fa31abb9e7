from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import pytest
from django.core.cache import caches

from issues.demo import load_seed
from issues.models import Article, Issue, MastheadMember, Publication, Volume

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def seed(db) -> Issue:
    return load_seed()


def test_seed_issue_page_shows_the_whole_issue_masthead_and_footer(client, seed):
    response = client.get("/monitor/6/11/")

    assert response.status_code == 200
    page = response.content.decode()
    article = seed.articles.get()
    assert article.body_html in page  # every paragraph, no cross-referenced issue exists
    for name in ("Jonas Bernstein", "Vladimir Socor", "Stephen Foye", "Ilias Bogatyrev"):
        assert name in page
    assert "Senior analysts" in page
    assert 'href="mailto:pubs@jamestown.org"' in page
    assert "301-562-8021" in page
    assert "4516 43rd Street NW, Washington DC 20016" in page
    assert "Copyright (c) 1983-2002 The Jamestown Foundation" in page
    assert "Site Maintenance" not in page
    assert '<html lang="en">' in page
    assert page.count("<h1") == 1
    assert '<main id="main">' in page


def test_issue_page_query_count(client, seed, django_assert_num_queries):
    # the issue, its articles, the masthead, the cross-referenced issues
    with django_assert_num_queries(4):
        assert client.get("/monitor/6/11/").status_code == 200


def test_issue_page_queries_do_not_grow_with_articles(client, seed, django_assert_num_queries):
    for position in range(1, 6):
        Article.objects.create(issue=seed, position=position, headline=f"H{position}", body="x")

    with django_assert_num_queries(4):
        page = client.get("/monitor/6/11/").content.decode()
    assert page.index("H1") < page.index("H5")


def test_cross_reference_links_to_an_archived_issue_of_that_date(client, seed):
    earlier = Volume.objects.create(publication=seed.publication, number=5, year=1999)
    Issue.objects.create(
        publication=seed.publication,
        volume=earlier,
        number=230,
        date=date(1999, 12, 9),
        status=Issue.Status.SENT,
    )

    page = client.get("/monitor/6/11/").content.decode()

    # December 9 is inside "December 8-10": the range's ends stay plain text
    assert "see the Monitor, October 7, December 8-10, 15-16" in page
    Issue.objects.filter(number=230).update(date=date(1999, 12, 10))
    caches["pages"].clear()  # the page is kept for a minute; the next one is rendered anew
    page = client.get("/monitor/6/11/").content.decode()
    assert 'December 8-<a href="/monitor/5/230/">10</a>, 15-16' in page
    assert "Fortnight in Review, October 8, December 17, 1999" in page


def test_cross_reference_to_an_unsent_issue_stays_plain(client, seed):
    Issue.objects.create(
        publication=seed.publication,
        volume=seed.volume,
        number=1,
        date=date(1999, 10, 7),
        status=Issue.Status.DRAFT,
    )

    page = client.get("/monitor/6/11/").content.decode()

    assert "see the Monitor, October 7, December" in page


@pytest.mark.parametrize(
    "url",
    ["/monitor/6/12/", "/monitor/7/11/", "/nosuch/", "/nosuch/6/11/", "/nosuch/feed/"],
)
def test_missing_pages_are_404(client, seed, url):
    response = client.get(url)
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_unsent_issue_is_not_public(client, seed):
    draft = Issue.objects.create(
        publication=seed.publication, volume=seed.volume, number=12, status=Issue.Status.APPROVED
    )
    assert client.get(draft.get_absolute_url()).status_code == 404


def test_inactive_publication_is_not_public(client, seed):
    Publication.objects.update(active=False)
    assert client.get("/monitor/").status_code == 404
    assert client.get("/monitor/6/11/").status_code == 404


def test_home_lists_latest_issue_and_the_subscribe_form(client, seed, django_assert_num_queries):
    with django_assert_num_queries(3):
        response = client.get("/")

    page = response.content.decode()
    assert 'href="/monitor/6/11/"' in page
    assert 'action="/subscribe/"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    for field in ('name="email"', 'name="name"', 'name="organization"'):
        assert field in page
    assert 'name="publications" value="monitor"' in page


def test_home_query_count_does_not_grow_with_publications(client, seed, django_assert_num_queries):
    for n in range(3):
        pub = Publication.objects.create(name=f"P{n}", slug=f"p{n}")
        volume = Volume.objects.create(publication=pub, number=1)
        issue = Issue.objects.create(
            publication=pub, volume=volume, number=1, status=Issue.Status.SENT
        )
        Article.objects.create(issue=issue, headline=f"Headline {n}", body="x")

    with django_assert_num_queries(3):
        page = client.get("/").content.decode()
    assert "Headline 2" in page


def test_archive_groups_issues_by_volume(client, seed, django_assert_num_queries):
    for number in range(1, 6):
        issue = Issue.objects.create(
            publication=seed.publication,
            volume=seed.volume,
            number=number,
            status=Issue.Status.SENT,
        )
        Article.objects.create(issue=issue, headline=f"Story {number}", body="x")
    Issue.objects.create(publication=seed.publication, volume=seed.volume, number=20)

    with django_assert_num_queries(3):
        response = client.get("/monitor/")

    page = response.content.decode()
    assert "Volume 6" in page
    assert 'href="/monitor/6/11/"' in page
    assert "Story 5" in page
    assert "/monitor/6/20/" not in page  # a draft


def test_feed_is_valid_atom_of_sent_issues(client, seed, django_assert_num_queries):
    Issue.objects.create(publication=seed.publication, volume=seed.volume, number=12)

    with django_assert_num_queries(3):
        response = client.get("/monitor/feed/")

    assert response["Content-Type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)  # noqa: S314 - our own output
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated", "author"):
        assert feed.find(f"{ATOM}{required}") is not None
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    entry = entries[0]
    for required in ("id", "title", "updated", "link"):
        assert entry.find(f"{ATOM}{required}") is not None
    assert entry.find(f"{ATOM}link").get("href").endswith("/monitor/6/11/")
    assert "Posakhau" in entry.find(f"{ATOM}summary").text


@pytest.mark.parametrize(
    "path", ["/subscribe/", "/unsubscribe/x/", "/preferences/", "/contact/", "/search/"]
)
def test_publication_pattern_leaves_other_pages_alone(path):
    from django.urls import Resolver404, resolve

    try:
        match = resolve(path)
    except Resolver404:
        return
    assert match.url_name != "archive"
    assert match.namespace != "issues" or match.url_name == "search"


def test_masthead_order_follows_position(client, seed):
    MastheadMember.objects.filter(name="Stephen Foye").update(position=0)
    MastheadMember.objects.filter(name="Jonas Bernstein").update(position=2)
    page = client.get("/monitor/6/11/").content.decode()
    assert page.index("Stephen Foye") < page.index("Jonas Bernstein")


def test_issue_page_is_served_from_the_page_cache_the_second_time(
    client, seed, django_assert_num_queries
):
    first = client.get(seed.get_absolute_url())
    with django_assert_num_queries(0):
        second = client.get(seed.get_absolute_url())
    assert second.status_code == 200
    assert second.content == first.content
    assert "max-age=60" in second["Cache-Control"]
