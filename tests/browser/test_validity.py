"""The Nu Html Checker (vnu.jar) on every public page in each of its states and on the
HTML of every email: no error."""

from __future__ import annotations

import pytest
import redis.exceptions
from django.test import Client, RequestFactory

from monitor_site.unavailable import ServiceUnavailableMiddleware
from monitor_site.views import ratelimited
from tests.browser.checkers import require_vnu, vnu_errors
from tests.browser.pages import html_part, issue_html, public_pages, transactional_messages

pytestmark = pytest.mark.django_db


def test_every_public_page_is_valid_html(newsroom):
    require_vnu()
    client = Client()
    documents = {}
    for page in public_pages(newsroom):
        response = client.get(page.path) if page.form is None else client.post(page.path, page.form)
        assert response.status_code == page.status, page
        assert response["Content-Type"].startswith("text/html"), page
        documents[page.name] = response.content.decode()
    too_many = ratelimited(RequestFactory().post("/subscribe/"), Exception())
    assert too_many.status_code == 429
    documents["too many requests"] = too_many.content.decode()
    down = ServiceUnavailableMiddleware(lambda request: None).process_exception(
        RequestFactory().get("/"), redis.exceptions.ConnectionError("refused")
    )
    assert down.status_code == 503
    documents["briefly unavailable"] = down.content.decode()

    errors = vnu_errors(documents)

    assert {name: found for name, found in errors.items() if found} == {}
    assert len(errors) == 39


def test_every_email_is_valid_html(newsroom):
    require_vnu()
    documents = issue_html(newsroom)
    for kind, message in transactional_messages(newsroom).items():
        documents[f"{kind} email"] = html_part(message)

    errors = vnu_errors(documents)

    assert {name: found for name, found in errors.items() if found} == {}
    assert len(errors) == 12
