"""An article's rendered body is shown on the issue's admin page in a sandboxed frame, from
a staff-only view that answers with the sanitized HTML as a document of its own."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from issues.markdown import render_markdown
from tests.factories import ArticleFactory, IssueFactory, StaffFactory

pytestmark = pytest.mark.django_db

HOSTILE = """Plain **words**, <script>alert(1)</script> and <img src=x onerror=alert(2)>,
a [link](javascript:alert(3)) and ![a picture](https://example.org/p.png)."""


def preview_url(article) -> str:
    return reverse("admin:issues_issue_article_preview", args=[article.issue_id, article.pk])


@pytest.fixture
def article():
    return ArticleFactory(issue=IssueFactory(articles=0), body=HOSTILE)


def test_the_change_form_frames_the_preview_instead_of_showing_the_body(client, analyst, article):
    client.force_login(analyst)

    page = client.get(reverse("admin:issues_issue_change", args=[article.issue_id])).text

    assert '<iframe class="article-preview" sandbox title="' in page
    assert f'src="{preview_url(article)}"' in page
    assert article.body_html not in page
    assert "<strong>words</strong>" not in page


def test_the_preview_is_the_sanitized_body_in_a_sandboxed_document(client, analyst, article):
    client.force_login(analyst)

    response = client.get(preview_url(article))

    assert response.status_code == 200
    assert render_markdown(article.body) in response.text
    assert "<strong>words</strong>" in response.text
    assert "&lt;script&gt;alert(1)" in response.text  # shown as text, never run
    assert "<script" not in response.text and '<img src="x"' not in response.text
    assert 'href="javascript:' not in response.text
    assert '<img src="https://example.org/p.png" alt="a picture">' in response.text
    policy = response["Content-Security-Policy"]
    directives = {p.split()[0]: p.split()[1:] for p in policy.split("; ")}
    assert directives["sandbox"] == [] and directives["default-src"] == ["'none'"]
    assert directives["img-src"] == ["http:", "https:"]
    assert directives["style-src"] == ["'self'"]  # the site's stylesheet, nothing inline
    assert directives["frame-ancestors"] == ["'self'"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_only_staff_who_may_see_the_issue_get_the_preview(client, article):
    assert client.get(preview_url(article)).status_code == 302  # to the login page

    client.force_login(StaffFactory(username="nobody"))  # staff, with no permission
    assert client.get(preview_url(article)).status_code == 403

    client.force_login(User.objects.create_user("reader", password="pw"))  # not staff
    assert client.get(preview_url(article)).status_code == 302


def test_an_article_is_previewed_only_under_its_own_issue(client, analyst, article):
    other = IssueFactory(number=99, articles=0)
    client.force_login(analyst)

    url = reverse("admin:issues_issue_article_preview", args=[other.pk, article.pk])

    assert client.get(url).status_code == 404
