"""The demo content of `load_demo`: the seed back issue, the back issues it cites, a
second publication, an approved next issue and the demo staff.

The seed (Volume 6, Issue 11 of *The Monitor*) cites "the Monitor, October 7, December
8-10, 15-16; Fortnight in Review, October 8, December 17, 1999". Each of those days gets
a short placeholder issue, sent, that says on its page that it is demo content, so that
every cross-reference of the seed leads to a real archive page. Everything is keyed on
publication, volume and number (staff on their username): a second run adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from issues import services
from issues.legacy_import import import_archive_file
from issues.models import Article, Issue, IssueEvent, Publication, Volume
from monitor_site.accounts import account_create_once

SEED = Path(__file__).resolve().parent / "monitor-6-11.txt"

# What a real publication would enter in the admin; enough for the demo to send.
DEMO_DETAILS = {
    "description": "Daily analysis of politics and security in Russia and the other "
    "post-Soviet states.",
    "sender_name": "The Monitor",
    "sender_email": "monitor@example.org",
    "reply_to": "pubs@example.org",
    "list_id_domain": "example.org",
}

FORTNIGHT = {
    "name": "Fortnight in Review",
    "slug": "fortnight",
    "description": "Every other Friday, the two weeks that mattered in the former Soviet Union.",
    "sender_name": "Fortnight in Review",
    "sender_email": "fortnight@example.org",
    "reply_to": "pubs@example.org",
    "list_id_domain": "example.org",
    "publisher_name": "The Jamestown Foundation",
    "contact_email": "pubs@example.org",
    "notice": "Demo content: a placeholder publication for the cross-references of the seed.",
}

# Each back issue the seed cites: publication slug, volume, number, date.
CITED = [
    ("monitor", 5, 185, date(1999, 10, 7)),
    ("monitor", 5, 229, date(1999, 12, 8)),
    ("monitor", 5, 230, date(1999, 12, 9)),
    ("monitor", 5, 231, date(1999, 12, 10)),
    ("monitor", 5, 234, date(1999, 12, 15)),
    ("monitor", 5, 235, date(1999, 12, 16)),
    ("fortnight", 5, 20, date(1999, 10, 8)),
    ("fortnight", 5, 25, date(1999, 12, 17)),
]

PLACEHOLDER = """*Demo content.* This is a placeholder for the issue of {day}, which the
Monitor of January 2000 (Volume 6, Issue 11) cites. The real issue is not part of the
demo; this page exists so that the cross-reference leads somewhere.

Replace it by importing the real back issue with `manage.py import_archive`."""

NEXT_ISSUE = {"volume": 6, "number": 12, "date": date(2000, 1, 18), "title": "Demo: the next issue"}
NEXT_ARTICLE = {
    "headline": "Minsk counts the cost of the union",
    "authors": "Demo Analyst",
    "regions": "Belarus, Russia",
    "body": """*Demo content*: an approved issue, ready to send from the admin.

Minsk has **welcomed** the Kremlin's assurances, but officials say privately that the
[union treaty](https://example.org/treaty/) gives them little room on customs and gas
prices (see the Monitor, December 15-16, 1999).

- the tariff schedule takes effect in March;
- the border posts stay until the summer.
""",
}


@dataclass(frozen=True)
class DemoAccount:
    username: str
    email: str
    group: str


STAFF = [
    DemoAccount("editor", "editor@example.org", "Editors"),
    DemoAccount("analyst", "analyst@example.org", "Analysts"),
]


def load_seed(stdout: TextIO | None = None) -> Issue:
    """The seed back issue, sent, with its publication's sender details (filled where
    blank). What every demo and several tests start from."""
    result = import_archive_file(SEED)
    if stdout is not None:
        stdout.write(f"{result}\n")
    publication = result.issue.publication
    changed = [k for k, v in DEMO_DETAILS.items() if not getattr(publication, k)]
    for key in changed:
        setattr(publication, key, DEMO_DETAILS[key])
    if changed:
        publication.save(update_fields=changed)
    return result.issue


def _placeholder_issue(publication: Publication, number: int, volume: Volume, day: date) -> bool:
    if Issue.objects.filter(volume=volume, number=number).exists():
        return False
    issue = Issue.objects.create(
        publication=publication,
        volume=volume,
        number=number,
        date=day,
        title=f"Demo placeholder: {day:%B} {day.day}, {day.year}",
        status=Issue.Status.SENT,
        sent_at=timezone.now(),
    )
    Article.objects.create(
        issue=issue,
        position=0,
        headline=f"The issue of {day:%B} {day.day}, {day.year}",
        body=PLACEHOLDER.format(day=f"{day:%B} {day.day}, {day.year}"),
    )
    IssueEvent.objects.create(issue=issue, to_status=Issue.Status.SENT, note="Demo content")
    return True


@transaction.atomic
def load_back_issues(monitor: Publication) -> int:
    """The second publication and the placeholder back issues the seed cites; how many
    issues were made."""
    fortnight, _ = Publication.objects.get_or_create(slug=FORTNIGHT["slug"], defaults=FORTNIGHT)
    publications = {"monitor": monitor, "fortnight": fortnight}
    made = 0
    for slug, volume_number, number, day in CITED:
        publication = publications[slug]
        volume, _ = Volume.objects.get_or_create(
            publication=publication, number=volume_number, defaults={"year": day.year}
        )
        made += _placeholder_issue(publication, number, volume, day)
    return made


def load_staff() -> dict[str, str]:
    """The demo editor and analyst: {username: password} for the accounts made now."""
    made = {}
    for account in STAFF:
        password = account_create_once(
            username=account.username, email=account.email, groups=[account.group]
        )
        if password is not None:
            made[account.username] = password
    return made


def load_next_issue(monitor: Publication) -> Issue | None:
    """The next issue of the Monitor, written by the demo analyst and approved by the
    demo editor through the workflow; None if it exists already (whatever became of it)."""
    User = get_user_model()
    volume = Volume.objects.get(publication=monitor, number=NEXT_ISSUE["volume"])
    if Issue.objects.filter(volume=volume, number=NEXT_ISSUE["number"]).exists():
        return None
    analyst = User.objects.get(username="analyst")
    editor = User.objects.get(username="editor")
    with transaction.atomic():
        issue = Issue.objects.create(
            publication=monitor,
            volume=volume,
            number=NEXT_ISSUE["number"],
            date=NEXT_ISSUE["date"],
            title=NEXT_ISSUE["title"],
        )
        IssueEvent.objects.create(issue=issue, to_status=Issue.Status.DRAFT, by=analyst)
        Article.objects.create(issue=issue, position=0, **NEXT_ARTICLE)
        services.issue_submit(issue=issue, by=analyst)
        services.issue_approve(issue=issue, by=editor)
    return issue
