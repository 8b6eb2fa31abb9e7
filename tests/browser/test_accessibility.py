"""axe-core in Chromium on every public page in each of its states, and on the HTML of
every email: no serious or critical violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.checkers import assert_accessible, axe_violations, screenshot
from tests.browser.pages import (
    PublicPage,
    html_part,
    issue_html,
    public_pages,
    transactional_messages,
)

pytestmark = pytest.mark.browser

# Each state's picture is taken for these pages.
PICTURES = {"issue: the seed": "issue-page", "subscribe: errors": "subscribe-errors"}


def fill_and_send(page, form: dict[str, str], status: int) -> None:
    """Fill the page's own form as a person would, and send it."""
    main_form = page.locator("main form").last
    for name, value in form.items():
        fields = main_form.locator(f'[name="{name}"]')
        kind = fields.first.get_attribute("type")
        if kind == "radio":
            main_form.locator(f'[name="{name}"][value="{value}"]').check()
        elif kind == "checkbox":
            for n in range(fields.count()):
                field = fields.nth(n)
                field.set_checked(field.get_attribute("value") in value.split(","))
        elif fields.first.evaluate("e => e.tagName") == "SELECT":
            fields.first.select_option(value)
        else:
            fields.first.fill(value)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        main_form.locator('button[type="submit"]').click()
    assert answer.value.status == status
    page.wait_for_load_state()


@pytest.mark.django_db(transaction=True)
def test_every_public_page_has_no_serious_axe_violation(page, live_server, newsroom):
    pages: list[PublicPage] = public_pages(newsroom)
    for public in pages:
        if public.form is None:
            response = page.goto(live_server.url + public.path)
            assert response.status == public.status, public
        else:
            page.goto(live_server.url + public.path)
            fill_and_send(page, public.form, public.status)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page, public.name)
        if public.name in PICTURES:
            screenshot(page, PICTURES[public.name])


@pytest.mark.django_db
def test_every_email_has_no_serious_axe_violation(page, newsroom):
    documents = issue_html(newsroom)
    for kind, message in transactional_messages(newsroom).items():
        documents[f"{kind} email"] = html_part(message)

    for name, html in documents.items():
        page.set_content(html)
        assert_accessible(page, name)
        if name == "issue 10 email":
            screenshot(page, "issue-email")

    # The control: a page axe must find fault with, so that a quiet run means something.
    page.set_content("<html><body><img src='x.png'><input type='text'></body></html>")
    found = {v["id"] for v in axe_violations(page, "(control)")}
    assert {"image-alt", "label", "html-has-lang"} <= found
