"""Every page a browser opens finds all it asks for: its stylesheet, its scripts and its
icon (without a declared icon, every browser asks for /favicon.ico and logs a 404)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("path", ["/", "/subscribe/", "/admin/login/"])
def test_a_page_finds_everything_it_asks_for(page, live_server, newsroom, path):
    answers: list[tuple[int, str]] = []
    page.on("response", lambda response: answers.append((response.status, response.url)))
    with page.expect_response(lambda r: r.url.endswith("/favicon.svg")) as icon:
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
    assert icon.value.status == 200
    assert icon.value.headers["content-type"].startswith("image/svg+xml")
    assert [(status, url) for status, url in answers if status >= 400] == []
