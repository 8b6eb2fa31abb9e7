"""The email carries the cross-reference links of the issue's page, absolute to the
archive; preflight warns, without blocking, about citations no archived issue answers."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from delivery import preflight
from delivery.rendering import RenderedIssue, sample_recipient
from issues.models import Article, Issue
from tests.helpers import member_of, url

pytestmark = pytest.mark.django_db

LINK = re.compile(r'<a href="([^"]+)"[^>]*>([^<]+)</a>')


@pytest.fixture
def demo() -> None:
    call_command("load_demo", stdout=StringIO())


def archive_links(html: str, base: str) -> list[tuple[str, str]]:
    return [
        (href.removeprefix(base), label)
        for href, label in LINK.findall(html)
        if re.fullmatch(r"/(monitor|fortnight)/\d+/\d+/", href.removeprefix(base))
    ]


def test_the_emails_html_holds_the_cross_reference_links_of_the_web_page(client, demo):
    seed = Issue.objects.get(publication__slug="monitor", volume__number=6, number=11)
    page = client.get(seed.get_absolute_url()).content.decode()
    on_the_web = archive_links(page, "")
    assert len(on_the_web) == 7

    html = RenderedIssue(seed).html.fill(sample_recipient())

    in_the_email = archive_links(html, settings.SITE_URL)
    own = (seed.get_absolute_url(), "Read on the web")
    assert [link for link in in_the_email if link != own] == on_the_web
    assert (settings.SITE_URL + "/fortnight/5/25/", "December 17") in LINK.findall(html)


def test_the_text_part_spells_the_cross_reference_links_out(demo):
    issue = Issue.objects.get(status=Issue.Status.APPROVED)  # cites December 15-16, 1999

    text = RenderedIssue(issue).text.fill(sample_recipient())

    flat = " ".join(text.split())
    assert f"December 15 <{settings.SITE_URL}/monitor/5/234/>" in flat
    assert f"16 <{settings.SITE_URL}/monitor/5/235/>" in flat


def test_preflight_warns_about_citations_without_an_archived_issue_and_still_passes(demo):
    issue = Issue.objects.get(status=Issue.Status.APPROVED)
    Article.objects.create(
        issue=issue,
        position=1,
        body="Gas again (see the Monitor, December 8-9, 20; Prism, May 3, 1999).",
    )

    checks = {c.name: c for c in preflight.preflight(issue)}

    warning = checks["cross_references"]
    assert warning.ok and warning.warning
    assert warning.detail == (
        "Cited, but not in the archive (shown without a link): Monitor, December 20, 1999; "
        "Prism, May 3, 1999."
    )
    assert all(c.ok for c in checks.values())


def test_the_editor_sees_the_warning_on_the_issue_page_before_approving(client, demo):
    issue = Issue.objects.get(status=Issue.Status.APPROVED)
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.IN_REVIEW)
    issue.articles.update(body="Oil (see Fortnight in Review, December 31, 1999).")
    client.force_login(member_of("Editors", "editor2"))

    page = client.get(url("change", issue)).content.decode()

    assert 'alt="Warning"' in page
    assert "Fortnight In Review, December 31, 1999" in page
    assert 'value="Approve"' in page
