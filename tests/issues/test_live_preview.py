"""The article form's live preview: a staff-only, CSRF-checked POST that renders the
Markdown being typed, as the web page, the email's HTML or its plain text, saving nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from issues.admin import PREVIEW_MAX_CHARS
from issues.markdown import render_markdown
from issues.models import Article, Issue
from tests.factories import IssueFactory, StaffFactory

pytestmark = pytest.mark.django_db

TYPED = """Minsk has **welcomed** the rules <script>alert(1)</script>, a
[link](javascript:alert(3)) and [the treaty](https://example.org/treaty/)."""
URL = "/admin/issues/issue/live-preview/"


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {p.split()[0]: p.split()[1:] for p in policy.split("; ")}


def test_the_url_is_the_admins():
    assert reverse("admin:issues_issue_live_preview") == URL


def test_the_web_rendering_is_the_sanitized_markdown_in_a_sandboxed_document(client, analyst):
    issue = IssueFactory(articles=0)
    client.force_login(analyst)
    before = Article.objects.count()

    response = client.post(URL, {"text": TYPED, "mode": "web", "issue": issue.pk})

    assert response.status_code == 200
    assert render_markdown(TYPED) in response.text
    assert "<strong>welcomed</strong>" in response.text
    assert "<script" not in response.text and 'href="javascript:' not in response.text
    policy = directives(response)
    assert policy["sandbox"] == [] and policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'self'"]
    assert Article.objects.count() == before  # nothing saved


def test_the_email_renderings_are_the_issue_emails_parts(client, analyst):
    issue = IssueFactory(articles=0, status=Issue.Status.DRAFT)
    client.force_login(analyst)
    data = {"text": TYPED, "headline": "Minsk  and\nthe rules", "issue": issue.pk}

    html = client.post(URL, {**data, "mode": "email"})
    text = client.post(URL, {**data, "mode": "text"})

    assert html.status_code == text.status_code == 200
    assert "<h2" in html.text and "Minsk and the rules</h2>" in html.text
    assert "<strong" in html.text and 'style="' in html.text  # the email's CSS, inlined
    assert issue.publication.name in html.text and "Unsubscribe" in html.text
    assert directives(html)["sandbox"] == []
    body = text.text
    assert "Minsk has welcomed the rules" in body and "<strong>" not in body
    assert "the treaty &lt;https://example.org/treaty/&gt;" in body  # escaped in the <pre>
    assert "Unsubscribe: https://" in body or "Unsubscribe: http://" in body


def test_on_the_add_page_the_first_publication_stands_in(client, analyst, publication):
    client.force_login(analyst)

    response = client.post(URL, {"text": "Hello", "mode": "email", "issue": ""})

    assert response.status_code == 200 and publication.name in response.text


def test_only_a_post_with_a_csrf_token_from_staff_who_may_write_issues(client, analyst):
    assert client.post(URL, {"text": "x"}).status_code == 302  # to the login page

    client.force_login(StaffFactory(username="nobody"))  # staff, with no permission
    assert client.post(URL, {"text": "x"}).status_code == 403

    client.force_login(User.objects.create_user("reader", password="pw"))  # not staff
    assert client.post(URL, {"text": "x"}).status_code == 302

    client.force_login(analyst)
    assert client.get(URL).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(analyst)
    assert strict.post(URL, {"text": "x"}).status_code == 403  # no CSRF token
    strict.get(reverse("admin:issues_issue_add"))  # sets the CSRF cookie, as the form does
    token = strict.cookies["csrftoken"].value
    assert strict.post(URL, {"text": "x", "csrfmiddlewaretoken": token}).status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": "x", "mode": "pdf"}, "Unknown preview mode."),
        ({"text": "x" * (PREVIEW_MAX_CHARS + 1)}, "too long to preview"),
    ],
)
def test_a_bad_request_gets_a_clear_400(client, analyst, data, message):
    client.force_login(analyst)

    response = client.post(URL, data)

    assert response.status_code == 400 and message in response.text


def test_the_article_form_asks_for_the_live_preview(client, analyst):
    issue = IssueFactory(articles=1, status=Issue.Status.DRAFT)
    client.force_login(analyst)

    page = client.get(reverse("admin:issues_issue_change", args=[issue.pk])).text

    assert f'data-preview-url="{URL}"' in page and f'data-preview-issue="{issue.pk}"' in page
    assert "article-preview.js" in page
