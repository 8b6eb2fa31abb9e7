"""The admin's import and export of the subscriber list need the subscription
permissions: an Analyst is refused every step (403), whether they GET or POST;
Subscription staff go through them (their whole import and export is in test_admin)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from subscriptions.models import Subscriber
from tests.helpers import make_subscription, member_of

IMPORT = "/admin/subscriptions/subscriber/import/"
PROCESS_IMPORT = "/admin/subscriptions/subscriber/process_import/"
EXPORT = "/admin/subscriptions/subscription/export/"
CSV = b"email,name,organization\nann@example.org,Ann,Ministry\n"


@pytest.fixture
def analyst(db) -> Client:
    client = Client()
    client.force_login(member_of("Analysts", "ana"))
    return client


@pytest.fixture
def subscription_staff(db) -> Client:
    client = Client()
    client.force_login(member_of("Subscription staff", "sam"))
    return client


def import_form(publication) -> dict[str, object]:
    return {
        "import_file": SimpleUploadedFile("list.csv", CSV, "text/csv"),
        "format": "0",
        "resource": "0",
        "publication": publication.pk,
        "source": "import",
    }


def export_form() -> dict[str, str]:
    return {"format": "0", "resource": "0", "subscriptionexportresource_email": "on"}


def test_an_analyst_may_neither_open_nor_post_the_import(analyst, subscription_staff, publication):
    assert analyst.get(IMPORT).status_code == 403
    assert analyst.post(IMPORT, import_form(publication)).status_code == 403

    # A preview that Subscription staff made cannot be confirmed by an Analyst.
    preview = subscription_staff.post(IMPORT, import_form(publication))
    assert preview.status_code == 200
    confirm = dict(
        re.findall(r'name="(\w+)" value="([^"]*)"', preview.text.split("process_import")[1])
    )
    assert analyst.post(PROCESS_IMPORT, confirm).status_code == 403
    assert not Subscriber.objects.exists()

    assert subscription_staff.post(PROCESS_IMPORT, confirm).status_code == 302
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ann@example.org"]


def test_an_analyst_may_neither_open_nor_post_the_export(analyst, subscription_staff, publication):
    make_subscription(publication, email="reader@example.org")
    assert analyst.get(EXPORT).status_code == 403
    refused = analyst.post(EXPORT, export_form())
    assert refused.status_code == 403
    assert b"reader@example.org" not in refused.content

    exported = subscription_staff.post(EXPORT, export_form())
    assert exported.status_code == 200
    assert b"reader@example.org" in exported.content


def test_an_analyst_sees_no_subscriber_list(analyst, publication):
    make_subscription(publication, email="reader@example.org")
    index = analyst.get("/admin/")
    assert index.status_code == 200
    assert b"/admin/subscriptions/" not in index.content
    listing = analyst.get("/admin/subscriptions/subscriber/")
    assert listing.status_code == 403
    assert b"reader@example.org" not in listing.content
