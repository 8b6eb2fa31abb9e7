from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from subscriptions.models import ContactMessage, Subscriber, Subscription, Suppression
from subscriptions.services import suppression_add
from tests.helpers import make_subscription, member_of, offline_reader

Status = Subscription.Status


@pytest.fixture
def staff(client, db) -> Client:
    """A member of "Subscription staff": each test below is part of that group's work."""
    client.force_login(member_of("Subscription staff", "sam"))
    return client


def test_changelists_render_without_a_query_per_row(
    staff, publication, other_publication, gated_publication
):
    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert staff.get(url).status_code == 200
        return len(ctx.captured_queries)

    urls = [
        "/admin/subscriptions/subscriber/",
        "/admin/subscriptions/subscription/",
        "/admin/subscriptions/subscriptionrequest/",
        "/admin/subscriptions/suppression/",
        "/admin/subscriptions/contactmessage/",
    ]

    def add_rows(n: int, offset: int) -> None:
        for i in range(offset, offset + n):
            email = f"p{i}@example.org"
            make_subscription(publication, email=email)
            make_subscription(gated_publication, email=email, status=Status.AWAITING_APPROVAL)
            Suppression.objects.create(email=f"s{i}@example.org", reason="bounced")
            ContactMessage.objects.create(
                name="A", email=email, subject="S", body="B", publication=publication
            )

    add_rows(2, 0)
    few = [queries(u) for u in urls]
    add_rows(10, 2)
    many = [queries(u) for u in urls]
    assert few == many


def test_subscriber_page_shows_subscriptions_inline(staff, publication):
    subscription = make_subscription(publication, name="Ann")
    response = staff.get(f"/admin/subscriptions/subscriber/{subscription.subscriber_id}/change/")
    assert response.status_code == 200
    assert "The Monitor" in response.text
    response = staff.get("/admin/subscriptions/subscriber/?q=ann")
    assert "reader@example.org" in response.text


def test_requests_list_filters_and_bulk_approve_and_reject(
    staff, publication, gated_publication, commit
):
    first = make_subscription(gated_publication, email="a@example.org", status="awaiting_approval")
    second = make_subscription(gated_publication, email="b@example.org", status="awaiting_approval")
    make_subscription(publication, email="c@example.org", status=Status.PENDING)

    listing = staff.get("/admin/subscriptions/subscriptionrequest/")
    assert "a@example.org" in listing.text and "b@example.org" in listing.text
    assert "c@example.org" not in listing.text  # not a publication that needs approval
    listing = staff.get(
        f"/admin/subscriptions/subscriptionrequest/?status=all&publication__id__exact={gated_publication.pk}"
    )
    assert listing.status_code == 200

    with commit():
        staff.post(
            "/admin/subscriptions/subscriptionrequest/",
            {"action": "approve", "_selected_action": [first.pk]},
        )
    with commit():
        staff.post(
            "/admin/subscriptions/subscriptionrequest/",
            {"action": "reject", "_selected_action": [second.pk, first.pk]},
        )
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Status.ACTIVE  # approved; a later reject skips it
    assert second.status == Status.UNSUBSCRIBED
    assert [(m.to[0], m.subject) for m in mail.outbox] == [
        ("a@example.org", "Your subscription to Restricted Brief is approved"),
        ("b@example.org", "Your request for Restricted Brief"),
    ]
    assert first.events.last().by.username == "sam"


def test_suppression_added_in_admin_ends_subscriptions(staff, publication):
    subscription = make_subscription(publication)
    response = staff.post(
        "/admin/subscriptions/suppression/add/",
        {"email": "Reader@example.org", "reason": "complained", "source": "phone call"},
    )
    assert response.status_code == 302
    assert Suppression.objects.active().get().email == "reader@example.org"
    subscription.refresh_from_db()
    assert subscription.status == Status.COMPLAINED


def test_lift_suppression_asks_for_a_note_first(staff, publication):
    suppression = suppression_add(email="a@example.org", reason="bounced", source="esp")
    url = "/admin/subscriptions/suppression/"
    page = staff.post(url, {"action": "lift", "_selected_action": [suppression.pk]})
    assert page.status_code == 200
    assert "Lift suppressions" in page.text and "a@example.org" in page.text
    suppression.refresh_from_db()
    assert suppression.lifted_at is None

    staff.post(
        url,
        {"action": "lift", "_selected_action": [suppression.pk], "apply": "1", "note": "fixed"},
    )
    suppression.refresh_from_db()
    assert suppression.lifted_at is not None
    assert suppression.lifted_note == "fixed"
    assert suppression.lifted_by.username == "sam"


def test_admin_import_previews_then_imports(staff, publication, commit):
    url = "/admin/subscriptions/subscriber/import/"
    assert staff.get(url).status_code == 200
    data = (
        b"email,name,organization\n"
        b"ann@example.org,Ann,Ministry\n"
        b"bad-address,Bob,\n"
        b"ANN@example.org,Ann Again,\n"
        b"carl@example.org,Carl,\n"
    )
    with commit():
        preview = staff.post(
            url,
            {
                "import_file": SimpleUploadedFile("list.csv", data, "text/csv"),
                "format": "0",
                "resource": "0",
                "publication": publication.pk,
                "source": "legacy-postal",
            },
        )
    assert preview.status_code == 200
    # the dry run shows the invalid row and changes nothing, sends nothing
    assert "bad-address" in preview.text
    assert not Subscriber.objects.exists()
    assert mail.outbox == []

    # without the bad row, the preview offers to confirm
    good = data.replace(b"bad-address,Bob,\n", b"")
    with commit():
        preview = staff.post(
            url,
            {
                "import_file": SimpleUploadedFile("list.csv", good, "text/csv"),
                "format": "0",
                "resource": "0",
                "publication": publication.pk,
                "source": "legacy-postal",
            },
        )
    assert not Subscriber.objects.exists()
    confirm_fields = dict(
        re.findall(r'name="(\w+)" value="([^"]*)"', preview.text.split("process_import")[1])
    )
    with commit():
        done = staff.post("/admin/subscriptions/subscriber/process_import/", confirm_fields)
    assert done.status_code == 302, (confirm_fields, re.findall(r"errorlist.{0,300}", done.text))
    assert sorted(Subscriber.objects.values_list("email", "source")) == [
        ("ann@example.org", "legacy-postal"),
        ("carl@example.org", "legacy-postal"),
    ]
    assert set(Subscription.objects.values_list("status", flat=True)) == {Status.PENDING}
    # a legacy list: the invitation, not the confirmation
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == [
        (address, "The Monitor is moving to email: keep receiving it")
        for address in ("ann@example.org", "carl@example.org")
    ]


def test_admin_import_sends_readers_without_an_address_to_the_command(staff, publication):
    data = b"email,name,fax\n,Bob Fax,+1 202 555 0101\n"
    preview = staff.post(
        "/admin/subscriptions/subscriber/import/",
        {
            "import_file": SimpleUploadedFile("list.csv", data, "text/csv"),
            "format": "0",
            "resource": "0",
            "publication": publication.pk,
            "source": "legacy-fax",
        },
    )
    assert preview.status_code == 200
    assert "import fax and postal readers with the import_subscribers command" in preview.text
    assert not Subscriber.objects.exists()


def test_admin_export_has_the_command_columns(staff, publication):
    make_subscription(publication, name="Ann")
    zed = offline_reader(publication, name="Zed")
    response = staff.post(
        "/admin/subscriptions/subscription/export/",
        {
            "format": "0",
            "resource": "0",
            **{
                f"subscriptionexportresource_{f}": "on"
                for f in (
                    "email",
                    "name",
                    "organization",
                    "publication",
                    "status",
                    "confirmed_at",
                    "source",
                    "join_code",
                )
            },
        },
    )
    assert response.status_code == 200
    header = response.content.decode().splitlines()[0].lstrip("\ufeff")
    assert header == "email,name,organization,publication,status,confirmed_at,source,join_code"
    assert "reader@example.org,Ann,,monitor,active,,web," in response.content.decode()
    assert f",Zed,,monitor,offline,,legacy-postal,{zed.join_code}" in response.content.decode()


def test_repeated_failed_admin_logins_lock_out(db, settings):
    get_user_model().objects.create_superuser("editor", "e@example.org", "right-pass-123")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(
            "/admin/login/?next=/admin/", {"username": "editor", "password": "wrong"}
        )
        assert response.status_code in (200, 429)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "editor", "password": "right-pass-123"}
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
