"""The print and fax edition of an issue: the PDF, `print_issue`, and the admin's link."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from issues.demo import load_seed
from issues.models import Issue
from issues.printing import issue_pdf
from tests.factories import ArticleFactory, IssueFactory, StaffFactory
from tests.helpers import ROOT, child_env, member_of, pdf_pages_text

MARKDOWN = """The leadership seems **confused** and *worried*; see
[the archive](https://example.org/monitor/) or <https://example.org/feed/>.

## What changed

- Minsk looks east
- Łódź and Лукашенко on the list

1. first step
"""


@pytest.fixture
def seed_issue(db) -> Issue:
    load_seed()
    return Issue.objects.select_related("publication", "volume").get()


def whole(data: bytes) -> str:
    return " ".join(pdf_pages_text(data))


def test_the_seed_issue_prints_its_text_masthead_footer_and_closing_line(seed_issue):
    data = issue_pdf(seed_issue)

    text = whole(data)
    assert text.startswith("The Monitor Volume 6, Issue 11")
    article = seed_issue.articles.get()
    for paragraph in article.body.split("\n\n"):
        first_words = " ".join(paragraph.split()[:8]).replace("\\", "")
        assert first_words in text
    assert (
        "The Monitor is a publication of The Jamestown Foundation, researched and written "
        "under the direction of senior analysts Jonas Bernstein, Vladimir Socor, Stephen Foye; "
        "analysts Ilya Malyakin, Oleg Varfolomeyev, Ilias Bogatyrev." in text
    )
    assert "Email: pubs@jamestown.org" in text and "Fax: 301-562-8021" in text
    assert "Post: The Jamestown Foundation, 4516 43rd Street NW, Washington DC 20016" in text
    assert seed_issue.publication.notice in text
    assert (
        f"Visit {settings.SITE_URL}/join/ and type the personal code from our letter and your "
        f"email address, or subscribe at {settings.SITE_URL}/subscribe/." in text
    )


def test_every_headline_and_the_markdown_are_printed(db):
    issue = IssueFactory(articles=0, title="Belarus and its neighbours")
    for position, headline in enumerate(["Minsk looks east", "Kyiv waits", "Vilnius votes"]):
        ArticleFactory(issue=issue, position=position, headline=headline, authors="Vladimir Socor")
    article = issue.articles.get(position=0)
    article.body = MARKDOWN
    article.save()

    text = whole(issue_pdf(issue))

    assert "Belarus and its neighbours" in text
    for headline in ["Minsk looks east", "Kyiv waits", "Vilnius votes"]:
        assert headline in text
    assert "By Vladimir Socor" in text
    assert "The leadership seems confused and worried;" in text
    assert "the archive (https://example.org/monitor/)" in text
    assert "https://example.org/feed/." in text  # an address shown once, not twice
    assert "https://example.org/feed/ (" not in text
    assert "What changed" in text
    assert "• Minsk looks east" in text and "Łódź and Лукашенко on the list" in text
    assert "1. first step" in text
    assert issue.publication.notice in text


def test_every_page_is_numbered_page_n_of_m(db):
    issue = IssueFactory(articles=0)
    for position in range(12):
        ArticleFactory(issue=issue, position=position, headline=f"Article {position + 1}")

    pages = pdf_pages_text(issue_pdf(issue, paper="a4"))

    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert "The Monitor · Volume 6, Issue" in text
    assert "Article 12" in pages[-1] and "moving to email" in pages[-1]


def test_print_issue_writes_the_pdf(seed_issue, tmp_path):
    out = tmp_path / "monitor-6-11.pdf"
    stdout = io.StringIO()

    call_command("print_issue", "monitor", "6", "11", str(out), stdout=stdout)

    assert f"{out}: the print edition of The Monitor, Volume 6, Issue 11" in stdout.getvalue()
    text = whole(out.read_bytes())
    assert "The Monitor Volume 6, Issue 11" in text and "Page 1 of" in text


@pytest.mark.parametrize(
    ("slug", "volume", "number", "message"),
    [
        ("monitr", "6", "11", "No publication with the slug 'monitr'."),
        ("monitor", "7", "11", "The Monitor has no volume 7."),
        ("monitor", "6", "12", "The Monitor, Volume 6 has no issue 12."),
    ],
)
def test_print_issue_names_what_is_missing(seed_issue, tmp_path, slug, volume, number, message):
    out = tmp_path / "out.pdf"

    with pytest.raises(CommandError, match=message):
        call_command("print_issue", slug, volume, number, str(out))

    assert not out.exists()


@pytest.mark.django_db(transaction=True)
def test_print_issue_for_a_missing_issue_exits_non_zero_with_the_message(tmp_path):
    IssueFactory(number=11)
    out = tmp_path / "out.pdf"

    result = subprocess.run(
        [sys.executable, "manage.py", "print_issue", "monitor", "6", "12", str(out)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "The Monitor, Volume 6 has no issue 12." in result.stderr
    assert not out.exists()


def test_print_issue_refuses_a_path_it_cannot_write(seed_issue, tmp_path):
    with pytest.raises(CommandError, match=r"Cannot write .*missing/out\.pdf: No such file"):
        call_command("print_issue", "monitor", "6", "11", str(tmp_path / "missing" / "out.pdf"))
    with pytest.raises(CommandError, match="Is a directory"):
        call_command("print_issue", "monitor", "6", "11", str(tmp_path))


def test_an_editor_downloads_the_print_edition_from_the_issue_page(client, db):
    issue = IssueFactory(number=11, status=Issue.Status.SENT)
    client.force_login(member_of("Editors", "editor"))
    link = reverse("admin:issues_issue_print", args=[issue.pk])

    page = client.get(reverse("admin:issues_issue_change", args=[issue.pk]))
    assert f'<a href="{link}">Print edition (PDF)</a>' in page.content.decode()

    response = client.get(link)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="monitor-6-11.pdf"'
    assert "Headline 1" in whole(response.content)


def test_an_analyst_may_print_a_draft(client, db):
    issue = IssueFactory(number=12)
    client.force_login(member_of("Analysts", "analyst"))

    response = client.get(reverse("admin:issues_issue_print", args=[issue.pk]))

    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-")


def test_the_print_edition_is_refused_to_anonymous_and_unentitled_users(client, db):
    issue = IssueFactory(number=11)
    link = reverse("admin:issues_issue_print", args=[issue.pk])

    anonymous = client.get(link)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))

    client.force_login(StaffFactory(username="nobody"))  # staff, but in no group
    assert client.get(link).status_code == 403
