"""The staff groups come back after a flush (as after the migrations that make them), each
with exactly its permissions; none of them may see readers' signed links."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from delivery.permissions import READERS_LINKS
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db(transaction=True)


def permissions_of(name: str) -> set[tuple[str, str]]:
    return set(
        Group.objects.get(name=name).permissions.values_list("content_type__app_label", "codename")
    )


@pytest.fixture
def flushed() -> None:
    call_command("flush", interactive=False, verbosity=0)


def test_subscription_staff_come_back_after_a_flush_with_exactly_their_permissions(flushed):
    assert permissions_of("Subscription staff") == {
        ("subscriptions", "view_subscriber"),
        ("subscriptions", "change_subscriber"),
        ("subscriptions", "erase_subscriber"),
        ("subscriptions", "view_subscription"),
        ("subscriptions", "change_subscription"),
        ("subscriptions", "view_subscriptionevent"),
        ("subscriptions", "view_subscriptionrequest"),
        ("subscriptions", "change_subscriptionrequest"),
        ("subscriptions", "view_suppression"),
        ("subscriptions", "add_suppression"),
        ("subscriptions", "change_suppression"),
        ("subscriptions", "view_contactmessage"),
        ("subscriptions", "change_contactmessage"),
        ("delivery", "view_delivery"),
        ("delivery", "view_deliveryevent"),
        ("delivery", "view_bouncemessage"),
    }


def test_every_group_comes_back_and_analysts_hold_only_editorial_permissions(flushed):
    assert set(Group.objects.values_list("name", flat=True)) == {
        "Analysts",
        "Editors",
        "Subscription staff",
    }
    assert {app for app, _ in permissions_of("Analysts")} == {"issues"}
    assert permissions_of("Analysts") < permissions_of("Editors")
    assert ("issues", "send_issue") in permissions_of("Editors")


def test_only_superusers_and_those_given_it_may_see_readers_links(flushed):
    app_label, codename = READERS_LINKS.split(".")
    outbox = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    assert not outbox.group_set.exists()
    for group in ("Analysts", "Editors", "Subscription staff"):
        assert not StaffFactory(username=group.lower(), groups=[group]).has_perm(READERS_LINKS)
    assert StaffFactory(username="root", is_superuser=True).has_perm(READERS_LINKS)
    assert StaffFactory(username="reader", permissions=[READERS_LINKS]).has_perm(READERS_LINKS)
