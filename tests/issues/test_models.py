from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from issues.models import Article, Issue, Publication
from tests.factories import IssueFactory


def test_list_id_uses_the_configured_domain(publication):
    publication.list_id_domain = "example.org"
    assert publication.list_id == "The Monitor <monitor.example.org>"
    publication.list_id_domain = "monitor.example.org"
    assert publication.list_id == "The Monitor <monitor.example.org>"


def test_list_id_falls_back_to_the_site_host(publication, settings):
    publication.list_id_domain = ""
    settings.SITE_URL = "https://news.example.net:8443"
    assert publication.list_id == "The Monitor <monitor.news.example.net>"


@pytest.mark.parametrize("slug", ["subscribe", "unsubscribe", "search", "admin", "static"])
def test_reserved_slugs_are_refused(db, slug):
    with pytest.raises(ValidationError):
        Publication(name="X", slug=slug).full_clean()


def test_article_keeps_its_rendered_body_in_step(db):
    issue = IssueFactory(articles=0)
    article = Article.objects.create(issue=issue, body="Hello *world* <script>x</script>")

    assert article.body_html == "<p>Hello <em>world</em> &lt;script&gt;x&lt;/script&gt;</p>"
    article.body = "Changed"
    article.save(update_fields=["body"])
    article.refresh_from_db()
    assert article.body_html == "<p>Changed</p>"


def test_next_number_is_one_past_the_highest_in_the_volume(volume):
    assert Issue.next_number(volume) == 1
    IssueFactory(number=4, articles=1)
    assert Issue.next_number(volume) == 5


def test_volume_must_belong_to_the_issue_publication(volume):
    other = Publication.objects.create(name="Fortnight in Review", slug="fortnight")
    issue = Issue(publication=other, volume=volume, number=1)

    with pytest.raises(ValidationError):
        issue.full_clean()
