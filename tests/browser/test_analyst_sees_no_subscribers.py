"""An Analyst in a real browser: the admin offers no subscriber list, no import, no
export and no outbox, and typing their addresses in gets "403 Forbidden" (the app's own
page, listing nothing they may see, does not exist for them: 404)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from subscriptions.models import Subscriber
from tests.browser.checkers import ADMIN_KNOWN, assert_accessible, screenshot
from tests.browser.pages import admin_log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
REFUSED = {
    "/admin/subscriptions/": 404,
    "/admin/subscriptions/subscriber/": 403,
    "/admin/subscriptions/subscriber/import/": 403,
    "/admin/subscriptions/subscription/export/": 403,
    "/admin/outbox/": 403,
}


def test_an_analyst_can_neither_see_nor_open_the_subscriber_list(
    page, live_server, settings, tmp_path
):
    settings.EMAIL_BACKEND = "monitor_site.outbox.OutboxBackend"
    settings.OUTBOX_DIR = tmp_path
    Subscriber.objects.create(email="reader@example.org", name="Ray Reader")
    analyst = User.objects.create_user("ana", "ana@example.org", PASSWORD, is_staff=True)
    analyst.groups.add(Group.objects.get(name="Analysts"))

    admin_log_in(page, live_server.url, analyst.username, PASSWORD)
    expect(page.get_by_role("link", name="Issues")).to_be_visible()
    for name in ("Subscribers", "Subscriptions", "Deliveries", "Outbox"):
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    assert_accessible(page, "admin: index for an analyst", known=ADMIN_KNOWN)
    screenshot(page, "analyst-index")

    for path, status in REFUSED.items():
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == status, path
        expect(page.get_by_text("reader@example.org")).to_have_count(0)
