"""Every CSV Monitor writes escapes cells a spreadsheet would run as a formula (a cell that
starts with = + - @, a tab or CR gets a leading '), and leaves every other cell alone."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from delivery.models import Delivery
from issues.models import Issue
from monitor_site.csvcells import csv_lines, csv_writer, safe_cell
from tests.factories import IssueFactory, SubscriberFactory, SubscriptionFactory
from tests.helpers import member_of, url

pytestmark = pytest.mark.django_db

FORMULAE = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(1)", "\tx", "\rx"]
ESCAPED = ["'" + value for value in FORMULAE]


def table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_safe_cell_quotes_formulae_only():
    assert [safe_cell(v) for v in FORMULAE] == ESCAPED
    ordinary = ["Ann", "2026-01-02T03:04:05+00:00", "a=b", "", "1-2", "'=kept"]
    assert [safe_cell(v) for v in ordinary] == ordinary
    assert [safe_cell(v) for v in (-2, 1.5, None)] == [-2, 1.5, None]


def test_writer_and_lines_escape_every_cell():
    out = io.StringIO()
    csv_writer(out).writerows([["name"], ["-2"], [-2], ["\rx"]])
    assert out.getvalue() == "name\r\n'-2\r\n-2\r\n\"'\rx\"\r\n"
    assert list(csv_lines([["a", "@b"], [3, "c"]])) == ["a,'@b\r\n", "3,c\r\n"]


@pytest.fixture
def readers() -> list[str]:
    """One active reader of *The Monitor* named after each formula, in address order."""
    emails = []
    for n, name in enumerate(FORMULAE):
        subscription = SubscriptionFactory(
            subscriber=SubscriberFactory(email=f"r{n}@example.org", name=name, organization=name)
        )
        emails.append(subscription.subscriber.email)
    return emails


def test_export_subscribers_escapes_names(readers):
    out = io.StringIO()
    call_command("export_subscribers", stdout=out)

    rows = table(out.getvalue())
    assert [(r[1], r[2]) for r in rows[1:]] == list(zip(ESCAPED, ESCAPED, strict=True))
    assert {r[0] for r in rows[1:]} == set(readers)  # addresses untouched
    assert all(r[5][:4].isdigit() for r in rows[1:])  # ISO dates untouched


def test_admin_export_escapes_names(admin_client, readers):
    columns = ("email", "name", "organization", "publication", "status", "confirmed_at")
    response = admin_client.post(
        "/admin/subscriptions/subscription/export/",
        {
            "format": "0",
            "resource": "0",
            **{f"subscriptionexportresource_{c}": "on" for c in columns},
        },
    )

    assert response.status_code == 200
    rows = table(response.content.decode())
    assert rows[0] == list(columns)
    by_email = {r[0]: r for r in rows[1:]}
    assert [by_email[e][1:3] for e in readers] == [[v, v] for v in ESCAPED]
    assert {r[3:5] == ["monitor", "active"] for r in rows[1:]} == {True}
    assert all(r[5][:4].isdigit() for r in rows[1:])


def test_failed_recipients_csv_escapes_reasons_and_addresses(client):
    issue = IssueFactory(status=Issue.Status.SENT)
    for n, reason in enumerate(FORMULAE):
        subscriber = SubscriberFactory(email=f"r{n}@example.org")
        Delivery.objects.create(
            issue=issue,
            subscriber=subscriber,
            email=subscriber.email,
            status="failed",
            last_error=reason,
            attempts=2,
            next_attempt_at=timezone.now(),
        )
    odd = SubscriberFactory(email="+odd@example.org")
    Delivery.objects.create(
        issue=issue, subscriber=odd, email=odd.email, status="failed", attempts=1
    )
    client.force_login(member_of("Editors", "editor"))

    response = client.get(url("report_failed_csv", issue))

    rows = table(b"".join(response.streaming_content).decode())
    assert rows[0] == ["email", "status", "reason", "attempts", "last_attempt"]
    assert rows[1] == ["'+odd@example.org", "failed", "No reason recorded.", "1", ""]
    assert [r[2] for r in rows[2:]] == ESCAPED
    assert {r[3] for r in rows[2:]} == {"2"}
    assert all(r[4][:4].isdigit() for r in rows[2:])
