"""Every response carries a Content-Security-Policy: scripts and styles only from this
site's files, nothing inline unless it bears the response's nonce, no plugins, no
<base>, forms only to this site, framed by nobody. (In Chromium, with every journey
watched for violations: tests/browser.)"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from csp.middleware import CSPMiddleware
from django.http import HttpResponse
from django.template import engines
from django.urls import reverse

from issues.models import Issue
from tests.factories import ArticleFactory, IssueFactory, SubscriptionFactory
from tests.helpers import url

pytestmark = pytest.mark.django_db

SITE = {
    "default-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


def nonce_of(directives: dict[str, list[str]]) -> str | None:
    nonces = [v for v in directives.get("script-src", []) if v.startswith("'nonce-")]
    assert len(nonces) <= 1
    return nonces[0][len("'nonce-") : -1] if nonces else None


class Markup(HTMLParser):
    """The scripts, style elements and style attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.styles = 0
        self.style_attributes: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
        if tag == "style":
            self.styles += 1
        if "style" in attributes:
            self.style_attributes.append(tag)
        self.handlers += [name for name in attributes if name.startswith("on")]


def check_page(response, *, inline_attributes: bool = False) -> tuple[dict, Markup]:
    """The page's policy is the site's, and its markup keeps to it."""
    assert response.status_code == 200, response
    directives = policy(response)
    for name, values in SITE.items():
        if name != "img-src":
            assert directives[name] == values, (name, directives)
    assert directives["script-src"][0] == "'self'"
    markup = Markup()
    markup.feed(response.content.decode())
    nonce = nonce_of(directives)
    for script in markup.scripts:
        if script.get("src"):
            assert script["src"].startswith("/"), script  # one of our files
        elif script.get("type") != "application/json":  # data, never run
            assert nonce and script.get("nonce") == nonce, script
    assert markup.styles == 0
    if not inline_attributes:
        assert markup.handlers == [] and markup.style_attributes == []
    return directives, markup


@pytest.fixture
def sent_issue() -> Issue:
    issue = IssueFactory(status=Issue.Status.SENT, articles=0)
    ArticleFactory(issue=issue, body="Text with ![a chart](https://example.org/chart.png).")
    return issue


def test_public_pages_carry_the_site_policy(client, sent_issue):
    for path in (
        "/",
        sent_issue.publication.get_absolute_url(),
        "/search/?q=text",
        "/subscribe/",
        "/contact/",
        "/preferences/",
    ):
        directives, _ = check_page(client.get(path))
        assert directives["img-src"] == ["'self'"], path
        assert directives["script-src"] == ["'self'"], path  # no page script: no nonce


def test_an_issue_page_also_lets_in_the_images_articles_show(client, sent_issue):
    for _ in range(2):  # the second answer comes from the page cache
        directives, _ = check_page(client.get(sent_issue.get_absolute_url()))
        assert directives["img-src"] == ["'self'", "http:", "https:"]


def test_answers_without_a_page_carry_it_too(client):
    for path in ("/healthz", "/no-such-publication/", "/static/site.css"):
        assert policy(client.get(path))["frame-ancestors"] == ["'none'"], path


def test_admin_pages_run_only_scripts_from_our_files(admin_client, sent_issue):
    draft = IssueFactory(number=2)
    SubscriptionFactory()
    pages = [
        "/admin/",
        "/admin/issues/issue/",
        reverse("admin:issues_issue_change", args=[draft.pk]),
        reverse("admin:issues_issue_add"),
        url("preview", draft),
        url("report", sent_issue),
        "/admin/subscriptions/subscription/",
        "/admin/subscriptions/subscriber/import/",
    ]
    scripts = 0
    for path in pages:
        _, markup = check_page(admin_client.get(path))
        scripts += len(markup.scripts)
    assert scripts > len(pages)  # the admin's own scripts were looked at

    # django-import-export's export page has inline attributes: those alone are let in.
    directives, markup = check_page(
        admin_client.get("/admin/subscriptions/subscription/export/"), inline_attributes=True
    )
    assert (markup.handlers, len(markup.style_attributes)) == (["onchange"], 2)
    assert directives["script-src-attr"] == [
        "'unsafe-hashes'",
        "'sha256-wid4zL8fR53ZYy1ljOepzR77Dn6vWUUxuNnnWWBP3I8='",  # onSelectToggleChange(event)
    ]
    assert directives["style-src-attr"][0] == "'unsafe-hashes'"
    assert len(directives["style-src-attr"]) == 5


def test_the_login_page_carries_the_policy(client):
    check_page(client.get("/admin/login/"))


def test_the_email_preview_is_a_sandboxed_document_framed_by_the_admin(admin_client):
    issue = IssueFactory()

    response = admin_client.get(url("preview_html", issue))

    assert response.status_code == 200
    directives = policy(response)
    assert directives["sandbox"] == [] and directives["default-src"] == ["'none'"]
    assert directives["style-src"] == ["'unsafe-inline'"]  # the email's inlined CSS
    assert directives["frame-ancestors"] == ["'self'"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "script-src" not in directives


def test_an_inline_script_with_the_request_nonce_is_let_in(rf):
    # No page has one today; a template that adds one names request.csp_nonce.
    template = engines["django"].from_string(
        '<script nonce="{{ request.csp_nonce }}">run()</script>'
    )
    middleware = CSPMiddleware(lambda request: HttpResponse(template.render({"request": request})))

    response = middleware(rf.get("/"))

    nonce = nonce_of(policy(response))
    assert nonce and f'<script nonce="{nonce}">' in response.content.decode()
    assert nonce != nonce_of(policy(middleware(rf.get("/"))))  # a new one each time
