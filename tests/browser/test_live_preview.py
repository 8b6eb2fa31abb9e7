"""An analyst writes an article watching the live preview: the rendering beside the
Markdown changes as they type, without saving; the email's HTML and plain text are a
toggle away; leaving with unsaved changes asks first."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from issues.models import Article, Issue
from tests.browser.checkers import ADMIN_KNOWN, assert_accessible, screenshot
from tests.browser.pages import admin_log_in
from tests.factories import IssueFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def draft(newsroom) -> Issue:
    issue = IssueFactory(
        volume=newsroom["back_issue"].volume,
        number=20,
        status=Issue.Status.DRAFT,
        articles=1,
    )
    return issue


def test_the_preview_follows_the_markdown_without_saving_and_leaving_asks_first(
    page, live_server, draft
):
    user = User.objects.create_user("ana", "ana@example.org", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    saved = draft.articles.get().body
    admin_log_in(page, live_server.url, "ana", PASSWORD)
    page.goto(f"{live_server.url}/admin/issues/issue/{draft.pk}/change/")

    body = page.locator("#id_articles-0-body")
    preview = page.locator(".live-preview")
    frame = page.frame_locator(".live-preview iframe.article-preview:not([hidden])")
    expect(preview.get_by_role("group", name="Show the article as")).to_be_visible()

    # Typing, by keyboard: the rendering beside it changes, nothing is saved.
    body.click()
    body.press("Control+End")
    started = time.monotonic()
    body.press_sequentially("\n\nMinsk has **welcomed** the rules.", delay=20)
    expect(frame.locator("strong", has_text="welcomed")).to_be_visible()
    round_trip = time.monotonic() - started
    expect(preview.locator("output")).to_have_text(re.compile(r"^\d+ words$"))
    assert Article.objects.get(issue=draft).body == saved
    print(
        f"live preview: {preview.get_attribute('data-round-trip-ms')} ms a rendering; "
        f"{round_trip:.2f} s from the first key to the rendered text"
    )
    assert_accessible(page, "admin: live preview", known=ADMIN_KNOWN)
    screenshot(page, "analyst-live-preview", full_page=False)

    # The email's renderings, by keyboard: arrow keys move between the radio buttons.
    preview.get_by_label("Web page").focus()
    page.keyboard.press("ArrowRight")
    expect(preview.get_by_label("Email (HTML)")).to_be_checked()
    expect(frame.locator("a", has_text="Unsubscribe")).to_be_visible()
    expect(frame.locator("strong", has_text="welcomed")).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect(preview.get_by_label("Email (plain text)")).to_be_checked()
    expect(frame.locator("pre")).to_contain_text("Minsk has welcomed the rules.")
    expect(frame.locator("pre")).to_contain_text("Unsubscribe: ")
    assert preview.locator("iframe").count() == 1  # each rendering replaced the last

    # Leaving with unsaved changes: the browser asks first.
    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay on the page
    assert not page.is_closed()
    page.close()  # now without asking
    assert Article.objects.get(issue=draft).body == saved


def test_saving_leaves_without_a_warning(page, live_server, draft):
    user = User.objects.create_user("ana", "ana@example.org", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    admin_log_in(page, live_server.url, "ana", PASSWORD)
    page.goto(f"{live_server.url}/admin/issues/issue/{draft.pk}/change/")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))

    page.locator("#id_articles-0-body").fill("Saved **now**.")
    expect(page.locator(".live-preview-state")).to_have_text("Up to date, not saved")
    # By keyboard: a click just after Playwright scrolls can land in the sandboxed frame
    # (another process) that was under that point before the scroll.
    page.get_by_role("button", name="Save and continue editing").focus()
    page.keyboard.press("Enter")

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert dialogs == []
    assert Article.objects.get(issue=draft).body == "Saved **now**."
