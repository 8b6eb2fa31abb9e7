"""An analyst and an editor in a real browser, each in their own session.

The analyst logs in, creates an issue with two Markdown articles, previews it and
submits it for review. The editor approves it, sends a test to themselves, sends it
after the confirmation page, watches the progress bar reach 100 % while a real Celery
worker delivers to a real SMTP server, and reads the counts in the report."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from delivery.models import Delivery
from issues.models import Issue
from subscriptions.models import Subscriber, Subscription
from tests.browser.checkers import ADMIN_KNOWN, assert_accessible, screenshot
from tests.browser.pages import admin_log_in
from tests.helpers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
READERS = 24
REFUSED = "gone@example.net"  # the receiving server answers 550 for it
FIRST = """Belarus has **welcomed** the customs rules, and Minsk says the
[union treaty](https://example.org/treaty/) leaves *little* room.

- tariffs from March;
- border posts until summer.
"""
SECOND = "Kyiv's parliament passed the budget at the third reading."


def staff_user(username: str, group_name: str) -> User:
    """A member of the group the editorial migration makes ("Analysts", "Editors")."""
    user = User.objects.create_user(username, f"{username}@example.org", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def readers(newsroom) -> list[str]:
    emails = [f"reader{n}@example.net" for n in range(READERS - 1)] + [REFUSED]
    for address in emails:
        subscriber = Subscriber.objects.create(email=address, name=address.split("@")[0])
        Subscription.objects.create(
            subscriber=subscriber, publication=newsroom["monitor"], status="active"
        )
    return emails


def test_analyst_writes_editor_approves_tests_sends_and_reads_the_report(
    page, new_context, live_server, newsroom, readers, mailbox
):
    mailbox.refuse.add(REFUSED)
    analyst = staff_user("ana", "Analysts")
    editor = staff_user("ed", "Editors")

    # --- the analyst --------------------------------------------------------------
    admin_log_in(page, live_server.url, analyst.username, PASSWORD)
    page.get_by_role("row", name="Issues").get_by_role("link", name="Add").click()
    expect(page.get_by_role("heading", name="Add issue")).to_be_visible()
    page.get_by_label("Publication:").select_option(label="The Monitor")
    page.get_by_label("Volume:").select_option(label="The Monitor Volume 6")
    page.get_by_label("Number:").fill("13")
    page.get_by_label("Title:").fill("Customs and budgets")
    articles = page.locator(".inline-related:not(.empty-form)")
    articles.nth(0).get_by_label("Headline:").fill("Minsk and the customs union")
    articles.nth(0).get_by_label("Body:").fill(FIRST)
    page.get_by_role("button", name="Add another Article").click()
    articles.nth(1).get_by_label("Position:").fill("1")
    articles.nth(1).get_by_label("Headline:").fill("Kyiv passes its budget")
    articles.nth(1).get_by_label("Body:").fill(SECOND)
    assert_accessible(page, "admin: add issue", known=ADMIN_KNOWN)
    screenshot(page, "analyst-new-issue")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.get_by_text("was added successfully")).to_be_visible()
    issue = Issue.objects.get(number=13)
    assert [a.headline for a in issue.articles.all()] == [
        "Minsk and the customs union",
        "Kyiv passes its budget",
    ]
    assert "<strong>welcomed</strong>" in issue.articles.first().body_html

    page.locator("#sending").get_by_role("link", name="Preview as a subscriber").click()
    expect(page.locator("#preview-subject")).to_have_text(
        "The Monitor, Volume 6, Issue 13: Customs and budgets"
    )
    html = page.frame_locator("#preview-html")
    expect(html.locator("strong", has_text="welcomed")).to_be_visible()
    expect(html.get_by_role("link", name="union treaty")).to_be_visible()
    assert "Kyiv passes its budget" in page.locator("#preview-text").inner_text()
    page.locator("#preview-html").scroll_into_view_if_needed()
    # Only for the picture: the sandboxed frame paints on its own a moment after it
    # comes into view, and runs no script to wait on.
    page.wait_for_timeout(500)
    screenshot(page, "analyst-preview", full_page=False)
    assert_accessible(page, "admin: preview", known=ADMIN_KNOWN)
    page.get_by_role("link", name="Back to the issue").click()
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_text("is now in review")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)  # not an editor's

    # --- the editor, in a session of their own --------------------------------------
    context = new_context()
    desk = context.new_page()
    desk.set_default_timeout(20_000)
    admin_log_in(desk, live_server.url, editor.username, PASSWORD)
    desk.get_by_role("row", name="Issues").get_by_role("link", name="Issues").click()
    desk.get_by_role("link", name="The Monitor, Volume 6, Issue 13").click()
    desk.get_by_role("button", name="Approve").click()
    expect(desk.get_by_text("is now approved")).to_be_visible()
    checks = desk.locator("#sending table.preflight")
    expect(checks.locator("tr.pass")).to_have_count(6)  # the cross-references check among them
    assert_accessible(desk, "admin: approved issue", known=ADMIN_KNOWN)

    desk.get_by_role("button", name="Send a test to me (ed@example.org)").click()
    expect(desk.get_by_text("A test copy went to ed@example.org.")).to_be_visible()
    test_copy = mailbox.wait("ed@example.org")
    assert test_copy["Subject"] == "[TEST] The Monitor, Volume 6, Issue 13: Customs and budgets"
    assert not Delivery.objects.exists()  # a test is no delivery

    desk.get_by_role("link", name="Send now…").click()
    expect(desk.locator("#audience")).to_contain_text(f"now to {READERS} subscribers")
    assert_accessible(desk, "admin: confirm send", known=ADMIN_KNOWN)
    desk.get_by_role("button", name=f"Yes, send to {READERS} subscribers now").click()
    expect(desk.get_by_text(f"to {READERS} subscribers.").first).to_be_visible()

    desk.wait_for_function(
        "() => document.getElementById('send-progress-bar').value >= 100", timeout=120_000
    )
    expect(desk.locator("#send-progress-percent")).to_have_text("100.0%")
    expect(desk.locator("#send-progress-finished")).to_be_visible()
    expect(desk.locator("#send-progress td[data-status='sent']")).to_have_text(str(READERS - 1))
    expect(desk.locator("#send-progress td[data-status='failed']")).to_have_text("1")
    assert_accessible(desk, "admin: sending progress", known=ADMIN_KNOWN)
    screenshot(desk, "editor-progress", full_page=False)

    desk.get_by_role("link", name="see the report").click()
    figures = desk.locator("#report-figures")
    expect(figures.locator("td[data-status='sent']")).to_have_text(str(READERS - 1))
    expect(figures.locator("td[data-status='failed']")).to_have_text("1")
    expect(desk.locator("#failed-recipients")).to_contain_text(REFUSED)
    expect(desk.locator("#status-chart svg")).to_be_visible()
    assert_accessible(desk, "admin: report", known=ADMIN_KNOWN)
    screenshot(desk, "editor-report")
    context.close()

    wait_for(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, timeout=30)
    for address in readers[:-1]:
        assert len(mailbox.raw(address)) == 1, address
    assert mailbox.raw(REFUSED) == []
