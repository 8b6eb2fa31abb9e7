"""The archive: one volume a page, the latest first, with each issue's date."""

from __future__ import annotations

import re
from datetime import date

import pytest

from issues.dating import estimated_dates
from issues.models import Issue
from tests.factories import ArticleFactory, IssueFactory, PublicationFactory, VolumeFactory

SENT = Issue.Status.SENT


def issue_links(page: str) -> list[str]:
    return re.findall(r'<li>\s*<a href="(/monitor/\d+/\d+/)">', page)


@pytest.fixture
def volumes(db) -> list:
    made = []
    for number, year in ((4, 1998), (5, 1999), (6, 2000)):
        volume = VolumeFactory(number=number, year=year)
        for n in (1, 2, 3):
            issue = IssueFactory(
                volume=volume, number=n, status=SENT, date=date(year, 3, n), articles=0
            )
            ArticleFactory(issue=issue, headline=f"Story {number}.{n}")
        made.append(volume)
    IssueFactory(volume=made[-1], number=4, articles=0)  # a draft
    VolumeFactory(number=7, year=2001)  # nothing sent in it yet
    return made


def test_the_archive_opens_on_the_latest_volume(client, volumes, django_assert_num_queries):
    with django_assert_num_queries(3):  # the volumes, the issues, their headlines
        page = client.get("/monitor/").content.decode()

    assert issue_links(page) == ["/monitor/6/3/", "/monitor/6/2/", "/monitor/6/1/"]
    assert "Story 6.3" in page
    assert "Story 5.1" not in page
    assert "/monitor/6/4/" not in page  # the draft
    assert '<time datetime="2000-03-03">March 3, 2000</time>' in page
    assert 'href="/monitor/5/" rel="next">Older: Volume 5' in page
    assert 'aria-current="page">Volume 6 (2000)' in page
    assert "Volume 7" not in page  # no issue of it is public


def test_each_volume_is_a_page_linked_to_its_neighbours(client, volumes):
    page = client.get("/monitor/5/").content.decode()

    assert issue_links(page) == ["/monitor/5/3/", "/monitor/5/2/", "/monitor/5/1/"]
    assert 'href="/monitor/6/" rel="prev">Newer: Volume 6' in page
    assert 'href="/monitor/4/" rel="next">Older: Volume 4' in page
    for number in (4, 5, 6):
        assert f'href="/monitor/{number}/"' in page


@pytest.mark.parametrize("path", ["/monitor/7/", "/monitor/9/", "/nosuch/6/"])
def test_a_volume_with_nothing_public_is_not_found(client, volumes, path):
    assert client.get(path).status_code == 404


def test_a_publication_with_nothing_sent_says_so(client, db):
    PublicationFactory()
    page = client.get("/monitor/").content.decode()
    assert "No issue of The Monitor has been published yet." in page


def test_an_undated_back_issue_shows_an_estimated_date(client, db):
    volume = VolumeFactory(number=6, year=2000)
    for number, day in ((1, date(2000, 1, 3)), (5, date(2000, 1, 7)), (9, date(2000, 1, 11))):
        IssueFactory(volume=volume, number=number, status=SENT, date=day, articles=0)
    for number in (3, 11):
        IssueFactory(volume=volume, number=number, status=SENT, articles=0)

    page = client.get("/monitor/").content.decode()

    assert 'about <time datetime="2000-01-05">January 5, 2000</time> (estimated' in page
    assert 'about <time datetime="2000-01-13">January 13, 2000</time>' in page


def test_estimates_follow_the_volumes_pace(db):
    volume = VolumeFactory()
    dated = [
        IssueFactory(volume=volume, number=n, date=d, articles=0)
        for n, d in ((10, date(2000, 1, 10)), (12, date(2000, 1, 24)), (13, date(2000, 1, 31)))
    ]
    first, between, last = (IssueFactory(volume=volume, number=n, articles=0) for n in (8, 11, 15))

    estimates = estimated_dates([*dated, first, between, last])

    assert estimates == {
        first.pk: date(1999, 12, 27),  # a week an issue, as the volume goes
        between.pk: date(2000, 1, 17),
        last.pk: date(2000, 2, 14),
    }


def test_no_estimate_from_a_single_dated_issue(client, db):
    volume = VolumeFactory(number=6, year=2000)
    IssueFactory(volume=volume, number=1, status=SENT, date=date(2000, 1, 3), articles=0)
    IssueFactory(volume=volume, number=2, status=SENT, articles=0)

    page = client.get("/monitor/").content.decode()

    assert "estimated" not in page
    assert "Issue 2</a> · 2000" in page
