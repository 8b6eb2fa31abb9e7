"""The conversion report: legacy readers by source and state, conversions per week, and
the offline readers as CSV for the mail room, in a fixed number of queries."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from subscriptions import conversion, invitations, joining
from subscriptions.models import Subscriber, Subscription
from subscriptions.services import subscription_unsubscribe, suppression_add
from tests.factories import StaffFactory
from tests.helpers import make_subscription, offline_reader

Status = Subscription.Status


def invited(publication, address: str, source: str, *, days_ago: float = 1) -> Subscription:
    subscription = make_subscription(publication, email=address, status=Status.PENDING)
    Subscriber.objects.filter(pk=subscription.subscriber_id).update(source=source)
    invitations.invitations_send(subscriptions=[subscription])
    Subscription.objects.filter(pk=subscription.pk).update(
        invited_at=timezone.now() - timedelta(days=days_ago)
    )
    subscription.refresh_from_db()
    return subscription


@pytest.fixture
def readers(publication, other_publication):
    offline_reader(publication, fax="+1 202 555 0101", postal_address="", source="legacy-fax")
    offline_reader(publication, name="Pat Post", organization="=HYPERLINK(1)")
    offline_reader(other_publication)  # another publication's
    invited(publication, "invited@example.org", "legacy-email")
    reminded = invited(publication, "reminded@example.org", "legacy-email", days_ago=8)
    Subscription.objects.filter(pk=reminded.pk).update(reminders_sent=1, reminded_at=timezone.now())
    accepted = invited(publication, "yes@example.org", "legacy-email")
    invitations.invitation_accept(subscription=accepted, ip=None)
    declined = invited(publication, "no@example.org", "legacy-fax")
    subscription_unsubscribe(subscription=declined, reason="no thanks")
    invited(publication, "bounce@example.org", "legacy-email")
    suppression_add(email="bounce@example.org", reason="bounced", source="esp")
    invited(publication, "old@example.org", "legacy-postal", days_ago=70)
    joined = offline_reader(publication, postal_address="9 Elm St")
    Subscriber.objects.filter(pk=joined.pk).update(join_email="joined@example.org")
    joining.join_confirm(subscriber=joined, ip=None)
    make_subscription(publication, email="web@example.org")  # not a legacy reader


def test_counts_each_reader_once_by_source_and_state(publication, readers):
    report = conversion.conversion_report(publication=publication)
    zero = {state: 0 for state, _ in conversion.STATES}
    assert report.counts == {
        "legacy-fax": {**zero, "offline": 1, "declined": 1},
        "legacy-postal": {**zero, "offline": 1, "converted": 1, "expired": 1},
        "legacy-email": {**zero, "invited": 1, "reminded": 1, "converted": 1, "bounced": 1},
        "other": zero,
    }
    assert report.total == 9
    assert report.weekly[-1][1] == 2 and sum(n for _, n in report.weekly) == 2
    assert report.weekly[-1][0] <= timezone.localdate() < report.weekly[-1][0] + timedelta(7)


def test_the_admin_page_shows_counts_and_chart_in_fixed_queries(
    publication, readers, django_assert_max_num_queries
):
    client = Client()
    client.force_login(StaffFactory(is_superuser=True))
    url = reverse("admin:subscriptions_conversion", args=[publication.pk])

    with django_assert_max_num_queries(8):
        small = client.get(url)
    for n in range(60):
        offline_reader(publication, postal_address=f"{n} Long Road")
        invited(publication, f"more{n}@example.org", "legacy-email")
    with django_assert_max_num_queries(8):
        large = client.get(url)

    assert small.status_code == large.status_code == 200
    assert '<td data-state="offline">62</td>' in large.text
    assert '<td data-state="invited">61</td>' in large.text
    assert "<svg" in large.text and "Converted per week" in large.text
    changelist = client.get(reverse("admin:subscriptions_subscription_changelist"))
    assert reverse("admin:subscriptions_conversion") in changelist.text


def test_the_mail_room_gets_the_offline_readers_as_csv(publication, readers):
    client = Client()
    client.force_login(StaffFactory(is_superuser=True))
    url = reverse("admin:subscriptions_offline_csv", args=[publication.pk])

    response = client.get(url)
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["name", "organization", "fax", "postal_address", "join_code", "source"]
    codes = {
        s.subscriber.name or s.subscriber.fax: s.subscriber.join_code_display
        for s in Subscription.objects.offline(publication)
    }
    assert sorted(rows[1:]) == sorted(
        [
            ["Pat Post", "'=HYPERLINK(1)", "", "1 Main Street\nSpringfield", codes["Pat Post"],
             "legacy-postal"],
            ["", "", "'+1 202 555 0101", "", codes["+1 202 555 0101"], "legacy-fax"],
        ]
    )  # fmt: skip
    by_source = client.get(url, {"source": "legacy-fax"})
    assert len(list(csv.reader(io.StringIO(b"".join(by_source.streaming_content).decode())))) == 2


def test_the_report_needs_the_permission_to_view_subscriptions(publication, readers):
    client = Client()
    staff = StaffFactory()
    client.force_login(staff)
    url = reverse("admin:subscriptions_conversion", args=[publication.pk])
    csv_url = reverse("admin:subscriptions_offline_csv", args=[publication.pk])
    assert client.get(url).status_code == 403
    assert client.get(csv_url).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    assert client.get(url).status_code == 200
