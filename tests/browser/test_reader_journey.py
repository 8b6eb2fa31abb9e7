"""A reader in a real browser: home -> subscribe -> the confirmation email (a real SMTP
server, a real Celery worker) -> confirm -> preferences (plain text, a second
publication) -> an issue arrives, as plain text -> unsubscribe from its link.

Every page on the way is checked with axe-core and photographed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from delivery import services as delivery
from subscriptions.models import Subscription
from tests.browser.checkers import assert_accessible, link, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

READER = "ann.reader@example.org"


def test_reader_subscribes_confirms_changes_preferences_and_unsubscribes(
    page, playwright, live_server, newsroom, mailbox
):
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Latest issues")
    expect(page.get_by_role("link", name="Volume 6, Issue 11")).to_be_visible()
    assert_accessible(page, "home")
    screenshot(page, "reader-home")

    form = page.locator("form", has=page.get_by_role("button", name="Subscribe"))
    form.get_by_label("Email address").fill(READER)
    form.get_by_label("Name").fill("Ann Reader")
    form.get_by_label("The Monitor").check()
    form.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    assert_accessible(page, "subscribe: sent")

    confirmation = mailbox.wait(READER)
    assert confirmation["From"] == "The Monitor <monitor@example.org>"
    assert confirmation["Subject"] == "Please confirm your subscription to The Monitor"
    page.goto(link(confirmation, "/subscribe/confirm/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your subscription")
    expect(page.get_by_role("button")).to_have_count(1)
    assert Subscription.objects.get().status == Subscription.Status.PENDING  # GET: no change
    assert_accessible(page, "confirm")
    screenshot(page, "reader-confirm")

    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    expect(page.get_by_role("cell", name="Active")).to_be_visible()
    assert_accessible(page, "confirmed")

    welcome = mailbox.wait(READER, 2)
    assert welcome["Subject"] == "Welcome to The Monitor: your subscription is confirmed"
    page.goto(link(welcome, "/preferences/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your preferences")
    assert_accessible(page, "preferences")
    page.get_by_label("Plain text").check()
    page.get_by_label("Fortnight in Review").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Your preferences are saved.")
    expect(page.get_by_role("row", name="Fortnight in Review Active")).to_be_visible()
    expect(page.get_by_label("Plain text")).to_be_checked()
    assert_accessible(page, "preferences: saved")
    screenshot(page, "reader-preferences")
    subscriptions = {
        s.publication.slug: (s.status, s.format)
        for s in Subscription.objects.select_related("publication")
    }
    assert subscriptions == {"monitor": ("active", "text"), "fortnight": ("active", "text")}

    delivery.send_start(issue=newsroom["approved"])
    issue = mailbox.wait(READER, 3)
    assert issue["Subject"] == "The Monitor, Volume 6, Issue 12"
    assert issue.get_content_type() == "text/plain"  # the reader chose plain text
    assert issue["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = link(issue, "/unsubscribe/")
    assert issue["List-Unsubscribe"] == f"<{unsubscribe}>"

    page.goto(unsubscribe)
    expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe from The Monitor")
    expect(page.locator("main").get_by_role("button")).to_have_count(1)
    assert_accessible(page, "unsubscribe")
    screenshot(page, "reader-unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    assert_accessible(page, "unsubscribed")
    statuses = dict(Subscription.objects.values_list("publication__slug", "status"))
    assert statuses == {"monitor": "unsubscribed", "fortnight": "active"}

    # The mailbox provider's RFC 8058 POST on the header's link, without cookies,
    # answers 200 (never a redirect) and changes nothing more.
    provider = playwright.request.new_context()
    response = provider.post(
        unsubscribe,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        data="List-Unsubscribe=One-Click",
        max_redirects=0,
    )
    assert response.status == 200 and "unsubscribed" in response.text()
    provider.dispose()
    assert dict(Subscription.objects.values_list("publication__slug", "status")) == statuses
