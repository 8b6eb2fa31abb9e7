from __future__ import annotations

from django.core import mail

from subscriptions.models import ContactMessage


def test_contact_form_stores_message_acknowledges_and_notifies(csrf_client, publication, commit):
    page = csrf_client.get("/contact/?publication=monitor")
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value
    with commit():
        response = csrf_client.post(
            "/contact/",
            {
                "name": "Ann Reader",
                "email": "ann@example.org",
                "publication": "monitor",
                "subject": "Back issues",
                "body": "Do you have Volume 6?",
                "csrfmiddlewaretoken": token,
            },
        )
    assert response.status_code == 200
    message = ContactMessage.objects.get()
    assert (message.publication, message.status, message.ip) == (publication, "open", "127.0.0.1")
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.org", "pubs@example.org"]
    for sent in mail.outbox:
        assert sent.from_email == "The Monitor <monitor@example.org>"
        assert sent.alternatives and sent.alternatives[0][1] == "text/html"


def test_contact_without_publication_notifies_the_default_address(client, publication, commit):
    with commit():
        client.post(
            "/contact/", {"name": "A", "email": "a@example.org", "subject": "S", "body": "B"}
        )
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.org", "monitor@localhost"]


def test_contact_requires_csrf(csrf_client, publication):
    response = csrf_client.post(
        "/contact/", {"name": "A", "email": "a@example.org", "subject": "S", "body": "B"}
    )
    assert response.status_code == 403
    assert not ContactMessage.objects.exists()


def test_contact_validation_and_header_injection(client, publication, commit):
    cases = [
        ({"subject": "Hi\r\nBcc: victim@example.org"}, "no line breaks"),
        ({"name": "Ann\nTo: x@example.org"}, "no line breaks"),
        ({"email": "nope"}, "Enter a valid email address"),
        ({"body": "x" * 5001}, "at most 5000 characters"),
        ({"subject": ""}, "Enter your subject."),
    ]
    base = {"name": "A", "email": "a@example.org", "subject": "S", "body": "B"}
    for change, message in cases:
        with commit():
            response = client.post("/contact/", {**base, **change})
        assert response.status_code == 400, change
        assert message in response.text, (change, response.text)
    assert not ContactMessage.objects.exists()
    assert mail.outbox == []


def test_contact_honeypot(client, publication, commit):
    with commit():
        response = client.post(
            "/contact/",
            {"name": "A", "email": "a@example.org", "subject": "S", "body": "B", "website": "x"},
        )
    assert response.status_code == 200
    assert not ContactMessage.objects.exists()
    assert mail.outbox == []
