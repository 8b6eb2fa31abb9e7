"""A postal reader in a real browser: the code from the letter at /join/ (a wrong one
first) -> the confirmation email (a real SMTP server, a real Celery worker) -> confirm ->
the next issue arrives by email.

Every page on the way is checked with axe-core and photographed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from delivery import services as delivery
from subscriptions.models import Subscriber, Subscription
from tests.browser.checkers import assert_accessible, link, screenshot
from tests.helpers import offline_reader

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

READER = "paul.post@example.org"


def test_postal_reader_joins_with_the_letters_code_and_receives_the_next_issue(
    page, live_server, newsroom, mailbox
):
    reader = offline_reader(
        newsroom["monitor"], name="Paul Post", postal_address="7 Mill Lane\nOxford OX1 2AB"
    )

    page.goto(live_server.url + "/join/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Receive it by email")
    assert_accessible(page, "join")

    form = page.locator("main form")
    form.get_by_label("Code from your letter").fill("ZZZZ-ZZZZ")
    form.get_by_label("Email address").fill(READER)
    form.get_by_role("button", name="Send me the confirmation").click()
    expect(page.get_by_role("alert")).to_contain_text("This code is not valid or has been used")
    assert_accessible(page, "join: wrong code")

    # typed as read off the letter: lower case, a space, an O for the zero if there is one
    typed = reader.join_code_display.lower().replace("-", " ").replace("0", "o")
    form.get_by_label("Code from your letter").fill(typed)
    form.get_by_role("button", name="Send me the confirmation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    assert_accessible(page, "join: sent")
    screenshot(page, "join-sent")

    confirmation = mailbox.wait(READER)
    assert confirmation["Subject"] == "Confirm your email address for The Monitor"
    assert "Paul" not in confirmation.get_body(("plain",)).get_content()
    page.goto(link(confirmation, "/join/confirm/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    expect(page.locator("main").get_by_role("button")).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text("Paul")
    assert Subscription.objects.get().status == Subscription.Status.OFFLINE  # GET: no change
    assert_accessible(page, "join: confirm")

    page.get_by_role("button", name="Receive it by email").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    expect(page.locator("main li")).to_have_text("The Monitor")
    assert_accessible(page, "join: done")
    screenshot(page, "join-done")
    subscription = Subscription.objects.get()
    assert (subscription.subscriber_id, subscription.status) == (reader.pk, "active")
    assert Subscriber.objects.get(pk=reader.pk).email == READER

    welcome = mailbox.wait(READER, 2)
    assert welcome["Subject"] == "Welcome to The Monitor: your subscription is confirmed"

    delivery.send_start(issue=newsroom["approved"])
    issue = mailbox.wait(READER, 3)
    assert issue["Subject"] == "The Monitor, Volume 6, Issue 12"
    assert issue["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
