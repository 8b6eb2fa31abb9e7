from __future__ import annotations

import email
import email.policy

import pytest
from django.core.mail import EmailMultiAlternatives

from monitor_site.outbox import OutboxBackend
from tests.factories import StaffFactory
from tests.helpers import member_of


def test_outbox_writes_each_message_as_one_parseable_eml_file(tmp_path):
    backend = OutboxBackend(outbox_dir=tmp_path)
    messages = []
    for n in range(2):
        msg = EmailMultiAlternatives(
            subject=f"Issue {n} — Grüße",
            body="Plain text body\n",
            from_email="The Monitor <monitor@example.org>",
            to=[f"reader{n}@example.org"],
            headers={"List-Id": "The Monitor <monitor.example.org>"},
        )
        msg.attach_alternative("<p>HTML body</p>", "text/html")
        messages.append(msg)

    assert backend.send_messages(messages) == 2

    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 2
    assert not list(tmp_path.glob(".*.tmp"))
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.strict)
    assert parsed.defects == []
    assert parsed["Subject"] in {"Issue 0 — Grüße", "Issue 1 — Grüße"}
    assert parsed["List-Id"] == "The Monitor <monitor.example.org>"
    assert parsed.get_body(("plain",)).get_content() == "Plain text body\n"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>HTML body</p>"


def test_outbox_skips_messages_without_recipients(tmp_path):
    backend = OutboxBackend(outbox_dir=tmp_path)
    assert backend.send_messages([EmailMultiAlternatives(subject="x", body="y")]) == 0
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def outbox(settings, tmp_path):
    settings.EMAIL_BACKEND = "monitor_site.outbox.OutboxBackend"
    settings.OUTBOX_DIR = tmp_path
    msg = EmailMultiAlternatives(
        subject="Confirm your subscription",
        body="Please confirm.\n",
        from_email="monitor@example.org",
        to=["reader@example.org"],
    )
    OutboxBackend(outbox_dir=tmp_path).send_messages([msg])
    return next(tmp_path.glob("*.eml")).name


@pytest.mark.django_db
def test_superusers_read_the_outbox_in_the_admin(admin_client, outbox):
    listing = admin_client.get("/admin/outbox/")
    assert listing.status_code == 200
    assert b"Confirm your subscription" in listing.content
    assert b'href="/admin/outbox/"' in admin_client.get("/admin/").content

    one = admin_client.get(f"/admin/outbox/{outbox}")
    assert one.status_code == 200
    assert b"Please confirm." in one.content
    assert b"reader@example.org" in one.content


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["../secret_key", "nosuch.eml", "..%2Fsecret_key"])
def test_the_outbox_serves_only_its_own_messages(admin_client, outbox, name):
    assert admin_client.get(f"/admin/outbox/{name}").status_code == 404


@pytest.mark.django_db
def test_the_outbox_is_for_staff_and_only_while_it_is_the_backend(
    client, admin_client, outbox, settings
):
    assert client.get("/admin/outbox/").status_code == 302  # to the login page
    assert client.get(f"/admin/outbox/{outbox}").status_code == 302
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert admin_client.get("/admin/outbox/").status_code == 404
    assert b'href="/admin/outbox/"' not in admin_client.get("/admin/").content


@pytest.mark.django_db
@pytest.mark.parametrize("group", ["Analysts", "Editors", "Subscription staff"])
def test_staff_without_the_readers_links_permission_may_not_read_the_outbox(client, outbox, group):
    # Its messages hold readers' unsubscribe, preferences and confirm links.
    client.force_login(member_of(group, "someone"))
    assert client.get("/admin/outbox/").status_code == 403
    refused = client.get(f"/admin/outbox/{outbox}")
    assert refused.status_code == 403
    assert b"Please confirm." not in refused.content
    assert b'href="/admin/outbox/"' not in client.get("/admin/").content


@pytest.mark.django_db
def test_staff_given_the_readers_links_permission_read_the_outbox(client, outbox):
    client.force_login(StaffFactory(permissions=["delivery.view_outbox"]))
    assert b"Confirm your subscription" in client.get("/admin/outbox/").content
    assert b"Please confirm." in client.get(f"/admin/outbox/{outbox}").content
    assert b'href="/admin/outbox/"' in client.get("/admin/").content
