from __future__ import annotations

import hashlib
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from issues.models import Article, Issue, IssueEvent, MastheadMember, Publication, Volume

SEED = Path(__file__).resolve().parents[2] / "issues" / "demo" / "monitor-6-11.txt"
SEED_TEXT = SEED.read_text(encoding="utf-8")


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_archive", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def counts() -> dict[str, int]:
    models = (Publication, MastheadMember, Volume, Issue, Article, IssueEvent)
    return {m.__name__: m.objects.count() for m in models}


@pytest.fixture
def write(tmp_path):
    def write(name: str, content: str | bytes) -> str:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    return write


def test_the_project_copy_of_the_seed_is_the_seed_byte_for_byte():
    # The SHA-256 of the seed issue as it was handed over (Monitor, Volume 6, Issue 11).
    assert hashlib.sha256(SEED.read_bytes()).hexdigest() == (
        "650b02538ee837f9e91ffa8d504940da05988de84421cffc2cff463e8200bfe0"
    )


def test_seed_fills_the_publication_from_its_footer(db):
    out, _ = run(str(SEED))

    assert "created The Monitor, Volume 6, Issue 11" in out
    pub = Publication.objects.get()
    assert (pub.name, pub.slug) == ("The Monitor", "monitor")
    assert pub.publisher_name == "The Jamestown Foundation"
    assert pub.contact_email == "pubs@jamestown.org"
    assert pub.contact_fax == "301-562-8021"
    assert pub.contact_postal_address == (
        "The Jamestown Foundation, 4516 43rd Street NW, Washington DC 20016"
    )
    assert pub.notice == (
        "Unauthorized reproduction or redistribution of the Monitor is strictly prohibited "
        "by law. Copyright (c) 1983-2002 The Jamestown Foundation"
    )


def test_seed_masthead_keeps_names_roles_and_order(db):
    run(str(SEED))

    masthead = list(MastheadMember.objects.values_list("name", "role"))
    senior, analyst = MastheadMember.Role.SENIOR_ANALYST, MastheadMember.Role.ANALYST
    assert masthead == [
        ("Jonas Bernstein", senior),
        ("Vladimir Socor", senior),
        ("Stephen Foye", senior),
        ("Ilya Malyakin", analyst),
        ("Oleg Varfolomeyev", analyst),
        ("Ilias Bogatyrev", analyst),
    ]


def test_seed_issue_volume_and_article(db):
    run(str(SEED))

    issue = Issue.objects.select_related("volume").get()
    assert (issue.volume.number, issue.number) == (6, 11)
    assert issue.volume.year is None
    assert issue.date is None  # the seed has no Date: line
    assert issue.status == Issue.Status.SENT
    assert issue.sent_at is None  # a back issue: never mailed by this system
    assert len(issue.source_hash) == 64
    article = issue.articles.get()
    assert article.body.startswith("The Belarusan leadership seems confused")
    assert article.body.endswith("Fortnight in Review, October 8, December 17, 1999).")
    assert article.body.count("\n\n") == 3  # four paragraphs
    assert article.body_html.count("<p>") == 4
    # parenthesised source lists stay in the text
    assert "(Itar-Tass, Federal News Service, December 15-16, December 22, 1999; January 3-4)" in (
        article.body
    )
    event = issue.events.get()
    assert (event.from_status, event.to_status) == ("", Issue.Status.SENT)
    assert "monitor-6-11.txt" in event.note


def test_seed_footer_and_web_debris_are_not_article_text(db):
    run(str(SEED))

    body = Article.objects.get().body
    for footer_text in (
        "is a publication of",
        "pubs@jamestown.org",
        "Copyright",
        "Site Maintenance",
    ):
        assert footer_text not in body
    assert not Publication.objects.filter(notice__contains="Johnny Flash").exists()


def test_importing_the_same_file_again_creates_nothing(db):
    run(str(SEED))
    before = counts()

    out, _ = run(str(SEED))

    assert "unchanged The Monitor, Volume 6, Issue 11" in out
    assert counts() == before


def test_same_header_with_other_content_is_a_conflict(db, write):
    run(str(SEED))
    before = counts()
    changed = write("changed.txt", SEED_TEXT.replace("confused and worried", "calm"))

    with pytest.raises(CommandError):
        run(changed)
    assert counts() == before
    assert "calm" not in Article.objects.get().body


def test_conflict_message_names_the_file(db, write):
    run(str(SEED))
    changed = write("changed.txt", SEED_TEXT.replace("confused and worried", "calm"))
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("import_archive", changed, stdout=StringIO(), stderr=err)
    assert f"{changed}:1: conflict" in err.getvalue()


def test_footer_does_not_overwrite_details_an_editor_set(db):
    Publication.objects.create(name="The Monitor", slug="monitor", contact_email="ed@example.org")

    run(str(SEED))

    pub = Publication.objects.get()
    assert pub.contact_email == "ed@example.org"
    assert pub.contact_fax == "301-562-8021"


def test_status_option_makes_an_issue_ready_to_send(db):
    run(str(SEED), "--status", "approved")

    assert Issue.objects.get().status == Issue.Status.APPROVED


def test_date_line_sets_the_issue_date_and_volume_year(db, write):
    path = write(
        "dated.txt", "Publication: Prism Volume: 3 Issue: 2\nDate: January 17, 2000\n\nText.\n"
    )

    run(path)

    issue = Issue.objects.select_related("volume").get()
    assert str(issue.date) == "2000-01-17"
    assert issue.volume.year == 2000
    assert issue.publication.slug == "prism"


def test_markdown_characters_in_legacy_text_stay_literal(db, write):
    path = write(
        "plain.txt",
        "Publication: Prism Volume: 3 Issue: 2\n\n1999. A *starred* word_with_underscores [1]\n",
    )

    run(path)

    html = Article.objects.get().body_html
    assert html == "<p>1999. A *starred* word_with_underscores [1]</p>"


MALFORMED = {
    "no header": ("Monitor 6 11\n\nSome text.\n", 1, "header must be"),
    "blank lines then no header": ("\n\nVolume: 6 Issue: 11\n\nText.\n", 3, "header must be"),
    "roman volume": ("Publication: Monitor Volume: VI Issue: 11\n\nText.\n", 1, "volume must be"),
    "non-numeric issue": (
        "Publication: Monitor Volume: 6 Issue: 11a\n\nText.\n",
        1,
        "issue must be",
    ),
    "empty body": ("Publication: Monitor Volume: 6 Issue: 11\n\n\n", 2, "no body"),
    "footer only": (
        "Publication: Monitor Volume: 6 Issue: 11\n\n"
        "The Monitor is a publication of the Jamestown Foundation. Copyright (c) 2000.\n",
        3,
        "no body",
    ),
    "bad date": ("Publication: Monitor Volume: 6 Issue: 11\nDate: soon\n\nText.\n", 2, "date must"),
    "empty file": ("", 1, "empty"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_file_is_refused_by_name_and_line(db, write, case):
    content, line, message = MALFORMED[case]
    path = write("broken.txt", content)
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("import_archive", path, stdout=StringIO(), stderr=err)

    assert err.getvalue().startswith(f"{path}:{line}: ")
    assert message in err.getvalue()
    assert sum(counts().values()) == 0


def test_unreadable_encoding_names_the_line(db, write):
    latin1 = "Publication: Monitor Volume: 6 Issue: 11\n\nPutin\u2019s text\n".encode("cp1252")
    path = write("latin1.txt", latin1)
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("import_archive", path, stdout=StringIO(), stderr=err)

    assert err.getvalue().startswith(f"{path}:3: not valid UTF-8")
    assert sum(counts().values()) == 0


def test_missing_file_is_refused(db, tmp_path):
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_archive", str(tmp_path / "nope.txt"), stdout=StringIO(), stderr=err)
    assert "nope.txt" in err.getvalue()


def test_other_files_in_the_same_call_still_import(db, write):
    broken = write("broken.txt", "no header here\n")
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="1 of 2"):
        call_command("import_archive", broken, str(SEED), stdout=out, stderr=err)

    assert "broken.txt:1:" in err.getvalue()
    assert Issue.objects.filter(number=11).exists()
