"""A reader's data (GDPR Art. 15): one JSON document of a stable layout holding every
kind of row kept about an address, from the command line and the subscriber's page."""

from __future__ import annotations

import io
import json

import pytest
from anymail.signals import AnymailTrackingEvent
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from delivery import feedback
from delivery.models import Delivery
from subscriptions.readerdata import FORMAT, VERSION, reader_data, reader_data_json
from tests.helpers import member_of, reader_with_history

EMAIL = "alice@example.org"
LAYOUT = [
    "format",
    "version",
    "generated_at",
    "email",
    "subscribers",
    "join_requests",
    "suppressions",
    "contact_messages",
    "mailbox_cooldowns",
    "deliveries",
    "events_without_delivery",
]


@pytest.fixture
def history(publication):
    return reader_with_history(publication, EMAIL)


def test_the_document_holds_every_kind_of_row_of_a_reader_with_a_full_history(history):
    document = json.loads(reader_data_json(reader_data(email=" Alice@Example.org ")))

    assert list(document) == LAYOUT
    assert (document["format"], document["version"], document["email"]) == (
        FORMAT,
        VERSION,
        EMAIL,
    )
    (person,) = document["subscribers"]
    assert (person["email"], person["name"], person["organization"]) == (
        EMAIL,
        "Alice Example",
        "Example Org",
    )
    assert person["consent"]["ip"] == "203.0.113.8"
    assert person["consent"]["form"] == "web:/subscribe/"
    assert person["consent"]["at"]
    (subscription,) = person["subscriptions"]
    assert subscription["publication"] == {"slug": "monitor", "name": "The Monitor"}
    assert subscription["status"] == "active" and subscription["confirmed_at"]
    assert [(h["from_status"], h["to_status"]) for h in subscription["history"]] == [
        ("", "pending"),
        ("pending", "active"),
    ]
    # someone typed the address with an offline reader's code: the request, not the reader
    assert len(document["join_requests"]) == 1
    assert "Bob Offline" not in json.dumps(document)
    (lifted,) = document["suppressions"]
    assert (lifted["email"], lifted["reason"]) == (EMAIL, "bounced")
    assert lifted["lifted_at"] and f"{EMAIL} wrote" in lifted["lifted_note"]
    (message,) = document["contact_messages"]
    assert (message["subject"], message["ip"]) == ("About issue 11", "203.0.113.9")
    assert [c["kind"] for c in document["mailbox_cooldowns"]] == ["confirmation"]

    refused, sent = document["deliveries"]  # newest first
    assert (sent["issue"]["number"], sent["status"]) == (11, "sent")
    assert [(e["kind"], e["machine"]) for e in sent["events"]] == [
        ("delivered", False),
        ("opened", True),
        ("opened", False),
        ("clicked", False),
    ]
    assert sent["events"][3]["url"] == "https://example.org/monitor/"
    assert (refused["issue"]["number"], refused["status"]) == (12, "failed")
    assert EMAIL.upper() in refused["last_error"]
    (unmatched,) = document["events_without_delivery"]
    assert unmatched["kind"] == "bounced"


def test_the_document_is_a_handful_of_queries_whatever_the_history(
    history, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        reader_data(email=EMAIL)


def test_a_clicked_link_that_acts_for_the_reader_is_given_without_its_token(history):
    sent = Delivery.objects.filter(email=EMAIL, status=Delivery.Status.SENT).get()
    feedback.event_record(
        esp="postmark",
        event=AnymailTrackingEvent(
            event_type="clicked",
            recipient=EMAIL,
            event_id="click-unsubscribe",
            metadata={"delivery_id": str(sent.pk)},
            timestamp=sent.sent_at,
            click_url=f"{settings.SITE_URL}/unsubscribe/AbC123-secret-token/",
        ),
    )

    text = reader_data_json(reader_data(email=EMAIL))

    assert "secret-token" not in text
    assert f"{settings.SITE_URL}/unsubscribe/…" in text


def test_reader_data_json_writes_the_document(history):
    out = io.StringIO()

    call_command("reader_data", EMAIL, "--json", stdout=out)

    document = json.loads(out.getvalue())
    assert list(document) == LAYOUT
    assert len(document["deliveries"]) == 2


def test_reader_data_without_json_summarises_for_a_person(history):
    out = io.StringIO()

    call_command("reader_data", EMAIL, stdout=out)

    text = out.getvalue()
    assert f"Data held about {EMAIL}" in text
    assert "Subscriber: Alice Example, Example Org" in text
    assert "The Monitor: active (html)" in text
    assert "Issues mailed: 2" in text
    assert "delivered, opened, opened, clicked" in text
    assert "Contact messages: 1" in text
    assert "--json" in text


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("nobody@example.org", "Nothing is held about nobody@example.org"),
        ("alice at example", "'alice at example' is not an email address"),
    ],
)
def test_reader_data_refuses_an_unknown_or_bad_address(history, argument, message):
    with pytest.raises(CommandError, match=message):
        call_command("reader_data", argument, stdout=io.StringIO())


def test_staff_download_the_document_from_the_subscribers_page(history, client):
    client.force_login(member_of("Subscription staff", "clerk"))
    page = reverse("admin:subscriptions_subscriber_change", args=[history.subscriber.pk])
    download = reverse("admin:subscriptions_subscriber_reader_data", args=[history.subscriber.pk])

    assert download in client.get(page).content.decode()
    response = client.get(download)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content)["email"] == EMAIL


def test_staff_without_access_to_subscribers_cannot_download_it(history, client):
    client.force_login(member_of("Analysts", "analyst"))
    download = reverse("admin:subscriptions_subscriber_reader_data", args=[history.subscriber.pk])

    assert client.get(download).status_code == 403
