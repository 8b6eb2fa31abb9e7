"""Chromium refuses nothing on the admin pages that run scripts, frame previews or draw
charts, opened and used as staff use them (the `new_context` fixture fails every test,
this one and each journey, on any Content-Security-Policy violation); and the watch
itself sees what the policy refuses."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from delivery.models import Delivery, SendJob
from issues.models import Issue
from subscriptions.models import Subscriber, Subscription
from tests.browser.pages import admin_log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def seen(page, violations: list[str], count: int) -> None:
    """Let the browser's console messages arrive (the sync API delivers them while it
    waits) until `count` violations are in."""
    for _ in range(50):
        if len(violations) >= count:
            return
        page.wait_for_timeout(100)


def test_the_watch_sees_what_the_policy_refuses(page, live_server, newsroom, csp_violations):
    page.goto(live_server.url + "/")
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.ran = true";
            document.head.append(script);
            const style = document.createElement("style");
            style.textContent = "body { color: red }";
            document.head.append(style);
        }"""
    )
    seen(page, csp_violations, 2)

    assert page.evaluate("() => window.ran") is None
    refused = " ".join(csp_violations)
    assert "script-src-elem" in refused and "style-src-elem" in refused
    csp_violations.clear()  # seen on purpose


@pytest.fixture
def sending(newsroom) -> Issue:
    """The approved issue, sending: one message queued and no worker, so the page polls."""
    issue = newsroom["approved"]
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENDING)
    SendJob.objects.create(issue=issue, audience=1)
    reader = Subscriber.objects.create(email="queued@example.org", name="Queued Reader")
    subscription = Subscription.objects.create(
        subscriber=reader, publication=issue.publication, status="active"
    )
    Delivery.objects.create(
        issue=issue, subscriber=reader, subscription=subscription, email=reader.email
    )
    return issue


@pytest.fixture
def reported(newsroom) -> Issue:
    """The Markdown issue, sent: one message delivered and one failed."""
    issue = newsroom["markdown_issue"]
    SendJob.objects.create(
        issue=issue, audience=2, state=SendJob.State.DONE, finished_at=timezone.now()
    )
    for n, status in enumerate(("sent", "failed")):
        reader = Subscriber.objects.create(email=f"r{n}@example.org", name='=HYPERLINK("x")')
        subscription = Subscription.objects.create(
            subscriber=reader, publication=issue.publication, status="active"
        )
        Delivery.objects.create(
            issue=issue,
            subscriber=reader,
            subscription=subscription,
            email=reader.email,
            status=status,
            attempts=1,
            sent_at=timezone.now() if status == "sent" else None,
            last_error="" if status == "sent" else "SMTP 550 5.1.1 No such user",
        )
    return issue


def test_admin_pages_in_use_break_no_policy(
    page, live_server, newsroom, sending, reported, tmp_path
):
    User.objects.create_superuser("root", "root@example.org", PASSWORD)
    base = live_server.url
    admin_log_in(page, base, "root", PASSWORD)

    # An issue's page: the articles' rendered bodies in sandboxed frames, the admin's
    # inline and calendar scripts, the send progress polled by our script.
    with page.expect_response(lambda r: "/progress.json" in r.url) as polled:
        page.goto(f"{base}/admin/issues/issue/{sending.pk}/change/")
        first = page.frame_locator("iframe.article-preview").first
        expect(first.locator("strong")).to_have_text("welcomed")
        expect(first.get_by_role("link", name="union treaty")).to_be_visible()
    assert polled.value.status == 200

    page.goto(f"{base}/admin/issues/issue/add/")
    page.get_by_role("button", name="Add another Article").click()
    expect(page.locator("#articles-group .inline-related:not(.empty-form)")).to_have_count(2)
    page.get_by_role("link", name="Choose a Date").click()
    page.get_by_role("link", name="Today").first.click()
    expect(page.get_by_label("Date:")).not_to_have_value("")

    # The email preview, in its own sandboxed document; the report's SVG charts.
    page.goto(f"{base}/admin/issues/issue/{reported.pk}/preview/")
    expect(page.frame_locator("#preview-html").locator("strong").first).to_be_visible()
    page.goto(f"{base}/admin/issues/issue/{reported.pk}/report/")
    expect(page.locator("#status-chart svg")).to_be_visible()
    expect(page.locator("#failed-recipients")).to_contain_text("r1@example.org")

    # The subscriber import: the upload, the dry-run preview, the import.
    list_csv = tmp_path / "list.csv"
    list_csv.write_text("email,name,organization\nnew@example.org,New Reader,Ministry\n")
    page.goto(f"{base}/admin/subscriptions/subscriber/import/")
    page.get_by_label("Publication").select_option(label="The Monitor")
    page.get_by_label("Confirmed").check()
    page.locator("input[type=file]").set_input_files(list_csv)
    page.get_by_label("Format").select_option(label="csv")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("new@example.org")).to_be_visible()
    page.get_by_role("button", name="Confirm import").click()
    expect(page.get_by_text("Import finished")).to_be_visible()
    assert Subscription.objects.filter(subscriber__email="new@example.org").exists()

    # The changelist's action bar, and the export with its select-all toggle.
    page.goto(f"{base}/admin/subscriptions/subscription/")
    page.get_by_role("row", name="new@example.org").get_by_role("checkbox").check()
    expect(page.locator(".action-counter")).to_contain_text("1 of")
    page.goto(f"{base}/admin/subscriptions/subscription/export/")
    toggle = page.locator("input.select-toggle")
    toggle.uncheck()
    expect(page.locator("input[name$='_email']")).not_to_be_checked()
    toggle.check()
    page.get_by_label("Format").select_option(label="csv")
    with page.expect_download() as download:
        page.get_by_role("button", name="Submit").click()
    exported = download.value.path().read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in exported and '\n"=HYPERLINK' not in exported
