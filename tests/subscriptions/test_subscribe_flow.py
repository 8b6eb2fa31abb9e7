from __future__ import annotations

import re

from django.core import mail

from subscriptions.models import Subscriber, Subscription
from tests.helpers import confirm_path

Status = Subscription.Status


def link(message, path: str) -> str:
    match = re.search(rf"http://[^\s]+{path}[^\s]+/", message.body)
    assert match, message.body
    return match.group(0).removeprefix("http://127.0.0.1:8000")


def test_subscribe_confirm_flow_with_captured_mail(
    csrf_client, publication, other_publication, commit
):
    page = csrf_client.get("/subscribe/")
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value
    assert 'name="website"' in page.text  # honeypot

    with commit():
        response = csrf_client.post(
            "/subscribe/",
            {
                "email": "Reader@Example.org",
                "name": "Ann Reader",
                "organization": "Ministry",
                "publications": ["monitor", "fortnight"],
                "csrfmiddlewaretoken": token,
            },
        )
    assert response.status_code == 200
    assert "Check your email" in response.text
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "reader@example.org"
    assert subscriber.consent_form == "web:/subscribe/"
    assert subscriber.consent_ip == "127.0.0.1"
    assert len(mail.outbox) == 1
    # on the site's domain, like an issue's, not on the worker host's name
    assert mail.outbox[0].message()["Message-ID"].endswith("@127.0.0.1>")
    confirm = link(mail.outbox[0], "/subscribe/confirm/")

    # GET shows one button and changes nothing (mail scanners follow links)
    page = csrf_client.get(confirm)
    assert page.status_code == 200
    assert page.text.count("<button") == 1
    assert set(subscriber.subscriptions.values_list("status", flat=True)) == {Status.PENDING}

    with commit():
        response = csrf_client.post(confirm, {"csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert "you will receive the next issue" in response.text
    assert set(subscriber.subscriptions.values_list("status", flat=True)) == {Status.ACTIVE}
    assert len(mail.outbox) == 2
    assert "/preferences/" in mail.outbox[1].body


def test_home_page_form_post_is_accepted(client, publication, other_publication, commit):
    # The home page posts the same fields, without the honeypot.
    with commit():
        response = client.post(
            "/subscribe/",
            {"email": "a@example.org", "name": "", "organization": "", "publications": "monitor"},
        )
    assert response.status_code == 200
    assert Subscription.objects.get().publication == publication


def test_single_active_publication_is_implied(client, publication, commit):
    with commit():
        response = client.post("/subscribe/", {"email": "a@example.org"})
    assert response.status_code == 200
    assert Subscription.objects.get().publication == publication


def test_csrf_is_enforced_on_subscribe_and_confirm(csrf_client, publication, commit):
    response = csrf_client.post("/subscribe/", {"email": "a@example.org"})
    assert response.status_code == 403
    assert not Subscriber.objects.exists()

    subscriber = Subscriber.objects.create(email="a@example.org")
    Subscription.objects.create(subscriber=subscriber, publication=publication)
    response = csrf_client.post(confirm_path(subscriber))
    assert response.status_code == 403
    assert Subscription.objects.get().status == Status.PENDING


def test_validation_messages(client, publication, other_publication):
    cases = [
        ({"email": "not-an-address", "publications": "monitor"}, "Enter a valid email address"),
        ({"email": "", "publications": "monitor"}, "Enter your email address."),
        ({"email": "a@example.org"}, "Choose at least one publication."),
        ({"email": "a@example.org", "publications": "nope"}, "is not a publication"),
        (
            {"email": "a@example.org", "publications": "monitor", "name": "x" * 201},
            "Name has at most 200 characters.",
        ),
        (
            {"email": "a@example.org", "publications": "monitor", "name": "Ann\r\nBcc: x@y.z"},
            "no line breaks",
        ),
        (
            {"email": "a@example.org\r\nBcc: x@y.z", "publications": "monitor"},
            "Enter a valid email address",
        ),
        ({"email": "a" * 250 + "@example.org", "publications": "monitor"}, "at most 254"),
    ]
    for data, message in cases:
        response = client.post("/subscribe/", data)
        assert response.status_code == 400, data
        assert message in response.text, (data, response.text)
    assert not Subscriber.objects.exists()


def test_inactive_publication_cannot_be_chosen(client, publication, other_publication):
    other_publication.active = False
    other_publication.save()
    response = client.post("/subscribe/", {"email": "a@example.org", "publications": "fortnight"})
    assert response.status_code == 400
    assert not Subscriber.objects.exists()


def test_honeypot_answers_the_same_and_does_nothing(client, publication, commit):
    with commit():
        response = client.post(
            "/subscribe/", {"email": "a@example.org", "website": "http://spam.example"}
        )
    assert response.status_code == 200
    assert "Check your email" in response.text
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


def test_gated_publication_confirmation_waits_for_staff(client, gated_publication, commit):
    with commit():
        client.post("/subscribe/", {"email": "a@example.org", "publications": "brief"})
    confirm = link(mail.outbox[0], "/subscribe/confirm/")
    with commit():
        response = client.post(confirm)
    assert "our staff will review your request" in response.text
    assert Subscription.objects.get().status == Status.AWAITING_APPROVAL
    assert len(mail.outbox) == 1


def test_get_never_changes_state(client, publication):
    from subscriptions.tokens import (
        confirm_url,
        footer_preferences_url,
        preferences_url,
        unsubscribe_url,
    )

    subscriber = Subscriber.objects.create(email="a@example.org")
    pending = Subscription.objects.create(subscriber=subscriber, publication=publication)
    before = list(Subscription.objects.values())
    for url in (
        confirm_url(subscriber.pk, subscriber.confirm_nonce),
        unsubscribe_url(pending.pk),
        preferences_url(subscriber.pk),
        footer_preferences_url(subscriber.pk),
        "http://127.0.0.1:8000/subscribe/?email=a@example.org&publications=monitor",
        "http://127.0.0.1:8000/preferences/?email=a@example.org",
        "http://127.0.0.1:8000/contact/?email=a@example.org",
    ):
        assert client.get(url.removeprefix("http://127.0.0.1:8000")).status_code == 200
    assert list(Subscription.objects.values()) == before
    assert mail.outbox == []


def test_transactional_message_ids_follow_the_site_url(client, publication, settings, commit):
    settings.SITE_URL = "https://monitor.example.org"
    with commit():
        client.post("/subscribe/", {"email": "a@example.org", "publications": ["monitor"]})
    message_id = mail.outbox[0].message()["Message-ID"]
    assert re.fullmatch(r"<[^@<>\s]+@monitor\.example\.org>", message_id), message_id
