"""The suppression list matches addresses by keyed hash: every check honours an entry
that keeps the hash alone, and a change of SECRET_KEY (the old key kept among the
fallbacks) un-suppresses nobody, while dropping that key is refused loudly."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from delivery import services as delivery
from delivery.models import Delivery
from issues.models import Issue
from subscriptions import hashing, services
from subscriptions.erasure import reader_erase
from subscriptions.models import Subscriber, Subscription, Suppression
from tests.factories import IssueFactory, SubscriptionFactory

OLD, NEW = "the-old-secret-key", "the-new-secret-key"


@pytest.fixture
def old_key(settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD, []
    return settings


def rotate(settings, *, keep_old: bool = True) -> None:
    settings.SECRET_KEY = NEW
    settings.SECRET_KEY_FALLBACKS = [OLD] if keep_old else []


def test_subscribers_written_one_by_one_or_in_bulk_carry_their_hash(db):
    one = Subscriber.objects.create(email=" Reader@Example.org ")
    bulk = Subscriber.objects.bulk_create([Subscriber(email="Bulk@Example.org")])[0]
    offline = Subscriber.objects.create(postal_address="1 Main Street")

    assert one.email_hash == hashing.address_hash("reader@example.org")
    assert Subscriber.objects.get(pk=bulk.pk).email_hash == hashing.address_hash("bulk@example.org")
    assert offline.email_hash == ""
    one.email = "changed@example.org"
    one.save(update_fields=["email"])
    assert Subscriber.objects.get(pk=one.pk).email_hash == hashing.address_hash(
        "changed@example.org"
    )


def test_after_a_key_change_the_old_keys_entries_still_suppress(old_key, publication):
    SubscriptionFactory(subscriber__email="bounced@example.org", publication=publication)
    services.suppression_add(email="bounced@example.org", reason="bounced", source="test")
    SubscriptionFactory(subscriber__email="erased@example.org", publication=publication)
    reader_erase(email="erased@example.org")
    rotate(old_key)

    assert services.is_suppressed("bounced@example.org")
    assert services.is_suppressed("erased@example.org")
    assert (
        services.subscription_request(
            email="bounced@example.org",
            name="",
            organization="",
            publications=[publication],
            ip=None,
            form="web",
        )
        is None
    )


def test_migrate_hashes_again_what_it_can_and_the_send_still_skips_the_list(old_key, publication):
    bounced = SubscriptionFactory(subscriber__email="bounced@example.org", publication=publication)
    services.suppression_add(email="bounced@example.org", reason="bounced", source="test")
    # put back by hand past the services, like the erased one below
    Subscription.objects.filter(pk=bounced.pk).update(status=Subscription.Status.ACTIVE)
    SubscriptionFactory(subscriber__email="erased@example.org", publication=publication)
    reader_erase(email="erased@example.org")
    again = SubscriptionFactory(subscriber__email="erased@example.org", publication=publication)
    SubscriptionFactory(subscriber__email="reader@example.org", publication=publication)
    rotate(old_key)

    call_command("migrate", verbosity=0)  # its post_migrate step hashes again

    new = hashing.key_id()
    assert set(Suppression.objects.values_list("key_id", flat=True)) == {new}
    assert Subscriber.objects.get(pk=again.subscriber_id).email_hash == hashing.address_hash(
        "erased@example.org"
    )
    issue = IssueFactory(volume__publication=publication, status=Issue.Status.APPROVED)
    delivery.send_start(issue=issue)
    assert list(Delivery.objects.filter(issue=issue).values_list("email", flat=True)) == [
        "reader@example.org"
    ]


def test_dropping_the_key_erased_readers_depend_on_fails_the_database_check(old_key, publication):
    SubscriptionFactory(subscriber__email="erased@example.org", publication=publication)
    reader_erase(email="erased@example.org")
    rotate(old_key)
    assert hashing.check_erased_keys(databases=["default"]) == []

    rotate(old_key, keep_old=False)

    (error,) = hashing.check_erased_keys(databases=["default"])
    assert error.id == "subscriptions.E001"
    assert "1 suppression entries of erased readers" in error.msg
    assert "DJANGO_SECRET_KEY_FALLBACKS" in error.hint
    assert hashing.check_erased_keys(databases=None) == []
