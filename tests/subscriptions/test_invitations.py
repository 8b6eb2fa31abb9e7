"""Legacy readers with an address get an invitation (the publication is moving to email),
not the confirmation of a request they never made; accepting it is one button."""

from __future__ import annotations

import email
import email.policy
import io
import re

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from subscriptions.models import Subscriber, Subscription

Status = Subscription.Status


def import_list(tmp_path, text: str, *args: str) -> str:
    path = tmp_path / "list.csv"
    path.write_text(text)
    out = io.StringIO()
    call_command("import_subscribers", str(path), "--publication", "monitor", *args, stdout=out)
    return out.getvalue()


def accept_link(message) -> str:
    return re.search(r"http\S+/subscribe/invitation/\S+/", message.body).group(0)


@pytest.fixture
def invited(publication, tmp_path, commit):
    with commit():
        import_list(tmp_path, "email,name\nann@example.org,Ann Reader\n", "--source", "legacy-fax")
    (message,) = mail.outbox
    return message


@pytest.mark.parametrize(
    ("source", "channel"),
    [("legacy-fax", "by fax"), ("legacy-postal", "by post"), ("legacy-email", "mailing list")],
)
def test_a_legacy_list_gets_the_invitation_not_the_confirmation(
    publication, tmp_path, commit, source, channel
):
    with commit():
        import_list(tmp_path, "email,name\nann@example.org,Ann Reader\n", "--source", source)
    with commit():
        import_list(tmp_path, "email,name\nbob@example.org,Bob\n")  # an ordinary import

    invitation, confirmation = mail.outbox
    assert invitation.to == ["ann@example.org"] and confirmation.to == ["bob@example.org"]
    assert invitation.subject == "The Monitor is moving to email: keep receiving it"
    assert confirmation.subject != invitation.subject
    assert "Someone, probably you, asked" in confirmation.body
    assert "probably you" not in invitation.body
    assert channel in invitation.body
    assert "Hello Ann Reader," in invitation.body
    assert "If you do nothing, nothing happens" in invitation.body
    assert "The link works for 60 days." in invitation.body
    html = invitation.alternatives[0][0]
    assert html.count("Keep receiving The Monitor</a>") == 1

    raw = invitation.message().as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.strict)
    assert parsed["Subject"] == invitation.subject
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<http\S+/unsubscribe/\S+/>", parsed["List-Unsubscribe"].strip())
    assert {p.get_content_type() for p in parsed.walk()} >= {"text/plain", "text/html"}
    assert all(len(line) <= 998 for line in raw.splitlines())

    subscription = Subscription.objects.get(subscriber__email="ann@example.org")
    assert subscription.status == Status.PENDING and subscription.invited_at is not None
    assert Subscriber.objects.get(email="ann@example.org").source == source


def test_accepting_is_one_button_and_records_the_consent(publication, invited, commit):
    link = accept_link(invited)
    page = Client().get(link)
    assert page.status_code == 200
    assert page.text.split("<main")[-1].count("<button") == 1
    assert Subscription.objects.get().status == Status.PENDING  # a GET changes nothing

    with commit():
        done = Client().post(link, REMOTE_ADDR="198.51.100.4")
    assert "You will receive the next issue of The Monitor" in done.text

    subscription = Subscription.objects.select_related("subscriber").get()
    assert subscription.status == Status.ACTIVE
    assert subscription.confirmed_at is not None and subscription.converted_at is not None
    reader = subscription.subscriber
    assert (reader.consent_form, reader.consent_ip) == ("invitation", "198.51.100.4")
    assert list(subscription.events.values_list("from_status", "to_status", "reason"))[-1] == (
        "pending",
        "active",
        "invitation accepted",
    )
    assert mail.outbox[-1].subject.startswith("Welcome to The Monitor")
    # a second press changes nothing
    Client().post(link)
    assert subscription.events.count() == 2


def test_the_invitation_link_lasts_sixty_days(publication, invited):
    link = accept_link(invited)
    with time_machine.travel(timezone.now() + timezone.timedelta(days=61)):
        expired = Client().post(link)
    assert expired.status_code == 400 and "Invitations work for 60 days" in expired.text
    assert Subscription.objects.get().status == Status.PENDING
    with time_machine.travel(timezone.now() + timezone.timedelta(days=59)):
        Client().post(link)
    assert Subscription.objects.get().status == Status.ACTIVE


def test_declining_from_the_invitation_ends_it(publication, invited):
    unsubscribe = re.search(r"<(http\S+)>", invited.extra_headers["List-Unsubscribe"]).group(1)
    response = Client().post(unsubscribe, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Subscription.objects.get().status == Status.UNSUBSCRIBED
    page = Client().get(accept_link(invited))
    assert "This invitation is closed" in page.text
    Client().post(accept_link(invited))
    assert Subscription.objects.get().status == Status.UNSUBSCRIBED


def test_an_invited_reader_is_invited_once_whatever_the_imports(publication, tmp_path, commit):
    for _ in range(2):
        with commit():
            import_list(tmp_path, "email\nann@example.org\n", "--source", "legacy-email")
    assert len(mail.outbox) == 1


def test_confirmed_legacy_imports_send_nothing(publication, tmp_path, commit):
    with commit():
        import_list(tmp_path, "email\nann@example.org\n", "--source", "legacy-email", "--confirmed")
    assert mail.outbox == []
    assert Subscription.objects.get().status == Status.ACTIVE
