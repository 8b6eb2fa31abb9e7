"""Subscription staff in a real browser: log in to the admin, approve a confirmed request
for a publication that requires approval (the reader is told by email), and lift a
suppression with a note."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from subscriptions.models import Subscriber, Subscription, Suppression
from subscriptions.services import suppression_add
from tests.browser.checkers import ADMIN_KNOWN, assert_accessible, link, screenshot
from tests.browser.pages import admin_log_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff_member(transactional_db) -> User:
    """A member of "Subscription staff", the group the migrations make."""
    user = User.objects.create_user("sam", "sam@example.org", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Subscription staff"))
    return user


def run_action(page, label: str, row: str) -> None:
    page.get_by_role("row", name=row).get_by_role("checkbox").check()
    page.get_by_role("combobox", name="Action:").select_option(label=label)
    page.get_by_role("button", name="Go", exact=True).click()


def test_staff_approve_a_request_and_lift_a_suppression(
    page, live_server, newsroom, mailbox, staff_member
):
    reader = Subscriber.objects.create(email="bob@example.org", name="Bob Analyst")
    request = Subscription.objects.create(
        subscriber=reader,
        publication=newsroom["brief"],
        status=Subscription.Status.AWAITING_APPROVAL,
    )
    suppression = suppression_add(email="carol@example.org", reason="bounced", source="esp")

    admin_log_in(page, live_server.url, staff_member.username, PASSWORD)
    assert_accessible(page, "admin: index", known=ADMIN_KNOWN)

    page.get_by_role("link", name="Subscription requests").click()
    expect(page.get_by_role("row", name="bob@example.org")).to_be_visible()
    assert_accessible(page, "admin: subscription requests", known=ADMIN_KNOWN)
    screenshot(page, "staff-requests")
    run_action(page, "Approve the selected requests (the requesters are told)", "bob@example.org")
    expect(page.get_by_text("1 approved.")).to_be_visible()
    request.refresh_from_db()
    assert request.status == Subscription.Status.ACTIVE
    assert request.events.last().by == staff_member
    told = mailbox.wait("bob@example.org")
    assert told["Subject"] == "Your subscription to Restricted Brief is approved"
    assert "/preferences/" in link(told, "/preferences/")

    page.goto(live_server.url + "/admin/")
    page.get_by_role("link", name="Suppressions").click()
    run_action(page, "Lift the selected suppressions…", "carol@example.org")
    expect(page.get_by_role("heading", name="Lift suppressions")).to_be_visible()
    page.get_by_label("Note").fill("The reader fixed her mailbox and asked by phone.")
    assert_accessible(page, "admin: lift suppressions", known=ADMIN_KNOWN)
    screenshot(page, "staff-lift-suppression")
    page.get_by_role("button", name="Lift suppressions").click()
    expect(page.get_by_text("1 suppressions lifted.")).to_be_visible()
    assert_accessible(page, "admin: suppressions", known=ADMIN_KNOWN)
    suppression.refresh_from_db()
    assert suppression.lifted_at is not None and suppression.lifted_by == staff_member
    assert suppression.lifted_note == "The reader fixed her mailbox and asked by phone."
    assert not Suppression.objects.active().exists()
