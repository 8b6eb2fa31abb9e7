"""An editor in a real browser: previews the issue, sends a test to themselves, sends
it after the confirmation page, and watches the progress bar reach 100 % without
reloading the page, while a real worker sends to a real SMTP server."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.urls import reverse

from issues.models import Issue
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("MONITOR_CHROMIUM", "/usr/bin/chromium")
AUDIENCE = 300
# Playwright's sync API runs an event loop in the test thread; the test only waits on
# the browser, so Django's guard against database calls from async code guards nothing.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ],
    }


def editor() -> User:
    user = User.objects.create_user("editor", "editor@example.org", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Editors"))
    return user


def test_editor_previews_test_sends_sends_and_watches_the_bar_reach_100(
    page,
    client,
    live_server,
    issue,
    make_subscribers,
    smtp_sink,
    smtp_settings,
    celery_worker_process,
):
    sink, port = smtp_sink
    sink.delay = 0.03  # about ten seconds of sending: several polls of the bar
    make_subscribers(AUDIENCE)
    celery_worker_process(EMAIL_URL=f"smtp://127.0.0.1:{port}", MONITOR_DELIVERY_CHUNK_SIZE="25")
    client.force_login(editor())
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page.set_default_timeout(20_000)
    change = live_server.url + reverse("admin:issues_issue_change", args=[issue.pk])

    page.goto(change)
    page.locator("#sending").get_by_role("link", name="Preview as a subscriber").click()
    frame = page.frame_locator("#preview-html")
    frame.get_by_text("Headline 1").first.wait_for()
    assert "Unsubscribe" in page.locator("#preview-text").inner_text()

    page.get_by_role("button", name="Send a test to me (editor@example.org)").click()
    page.get_by_text("A test copy went to editor@example.org.").wait_for()
    assert sink.recipients() == ["editor@example.org"]

    page.goto(change)
    page.get_by_role("link", name="Send now…").click()
    assert f"now to {AUDIENCE} subscribers" in page.locator("#audience").inner_text()
    page.get_by_role("button", name=f"Yes, send to {AUDIENCE} subscribers now").click()
    page.get_by_text(f"to {AUDIENCE} subscribers.").first.wait_for()

    bar = page.locator("#send-progress-bar")
    first = float(bar.get_attribute("value"))
    assert first < 100, "the send ended before the page showed it; slow the sink down"
    seen = {first}
    shots = os.environ.get("MONITOR_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / "sending.png"), full_page=True)
    page.wait_for_function(
        "() => document.getElementById('send-progress-bar').value >= 100", timeout=120_000
    )
    seen.add(float(page.evaluate("() => document.getElementById('send-progress-bar').value")))
    page.locator("#send-progress-finished").wait_for(state="visible")
    assert page.locator("#send-progress-percent").inner_text() == "100.0%"
    assert page.locator("td[data-status='sent']").inner_text() == str(AUDIENCE)
    assert page.locator("#send-progress-state").inner_text() == "done"
    assert not page.locator("#send-controls").is_visible()
    assert max(seen) == 100 and min(seen) < 100

    wait_for(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, timeout=30)
    counts = Counter(sink.recipients())
    assert counts["editor@example.org"] == 1 and len(counts) == AUDIENCE + 1
    assert max(counts.values()) == 1

    page.get_by_role("link", name="see the report").click()
    page.locator("#status-chart svg").wait_for()
    if shots:
        page.screenshot(path=str(Path(shots) / "report.png"), full_page=True)
