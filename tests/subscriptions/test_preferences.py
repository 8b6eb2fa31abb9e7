from __future__ import annotations

import re

from django.core import mail

from subscriptions.models import Subscription
from subscriptions.tokens import preferences_url
from tests.helpers import make_subscription

Status = Subscription.Status


def test_preferences_link_by_email_then_change_publications_format_and_name(
    csrf_client, publication, other_publication, commit
):
    subscription = make_subscription(publication, email="ann@example.org", name="Ann")
    page = csrf_client.get("/preferences/")
    token = page.cookies["csrftoken"].value
    with commit():
        response = csrf_client.post(
            "/preferences/", {"email": "ANN@example.org", "csrfmiddlewaretoken": token}
        )
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    url = re.search(r"http://\S+/preferences/\S+/", mail.outbox[0].body).group(0)
    url = url.removeprefix("http://127.0.0.1:8000")

    page = csrf_client.get(url)
    assert page.status_code == 200
    assert 'value="monitor"' in page.text and "checked" in page.text

    response = csrf_client.post(
        url,
        {
            "name": "Ann Reader",
            "publications": ["fortnight"],
            "format": "text",
            "csrfmiddlewaretoken": token,
        },
    )
    assert response.status_code == 200
    assert "Your preferences are saved." in response.text
    subscription.refresh_from_db()
    assert subscription.status == Status.UNSUBSCRIBED
    other = Subscription.objects.get(publication=other_publication)
    assert (other.status, other.format) == (Status.ACTIVE, "text")
    assert other.subscriber.name == "Ann Reader"


def test_preferences_post_requires_csrf(csrf_client, publication):
    subscription = make_subscription(publication)
    url = preferences_url(subscription.subscriber_id).removeprefix("http://127.0.0.1:8000")
    response = csrf_client.post(url, {"name": "x", "format": "text"})
    assert response.status_code == 403
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE


def test_preferences_form_rejects_bad_input(client, publication):
    subscription = make_subscription(publication)
    url = preferences_url(subscription.subscriber_id).removeprefix("http://127.0.0.1:8000")
    response = client.post(
        url, {"name": "Ann\nBcc: x@example.org", "publications": "monitor", "format": "pdf"}
    )
    assert response.status_code == 400
    assert "no line breaks" in response.text
    assert "Select a valid choice" in response.text
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE


def test_preferences_link_is_sent_once_per_ten_minutes(client, publication, commit):
    make_subscription(publication, email="ann@example.org")
    for _ in range(3):
        with commit():
            client.post("/preferences/", {"email": "ann@example.org"})
    assert len(mail.outbox) == 1
