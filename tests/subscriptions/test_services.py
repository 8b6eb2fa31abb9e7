from __future__ import annotations

import pytest
from django.core import mail

from subscriptions import services
from subscriptions.models import Subscriber, Subscription, SubscriptionEvent, Suppression
from subscriptions.tokens import BadToken
from tests.helpers import confirm_current_request, make_subscription

Status = Subscription.Status


def request(publications, email="Reader@Example.org", **kw):
    return services.subscription_request(
        email=email,
        name=kw.get("name", "Ann Reader"),
        organization=kw.get("organization", ""),
        publications=publications,
        ip=kw.get("ip", "192.0.2.1"),
        form="test",
    )


def test_request_creates_pending_subscriptions_and_one_confirmation(
    publication, other_publication, commit
):
    with commit():
        subscriber = request([publication, other_publication])

    assert subscriber.email == "reader@example.org"
    assert set(subscriber.subscriptions.values_list("status", flat=True)) == {Status.PENDING}
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["reader@example.org"]
    assert "/subscribe/confirm/" in message.body
    assert "The Monitor" in message.body and "Fortnight in Review" in message.body
    assert message.alternatives[0][1] == "text/html"


def test_confirm_activates_and_sends_welcome_with_preferences_link(publication, commit):
    with commit():
        subscriber = request([publication])
    with commit():
        nonce = Subscriber.objects.get(pk=subscriber.pk).confirm_nonce
        changed = services.subscription_confirm(subscriber=subscriber, nonce=nonce, ip="192.0.2.9")

    assert [s.status for s in changed] == [Status.ACTIVE]
    subscription = subscriber.subscriptions.get()
    assert subscription.confirmed_at is not None
    subscriber.refresh_from_db()
    assert subscriber.consent_at is not None and subscriber.consent_ip == "192.0.2.9"
    assert len(mail.outbox) == 2
    welcome = mail.outbox[1]
    assert "/preferences/" in welcome.body
    assert welcome.from_email == "The Monitor <monitor@example.org>"
    assert welcome.reply_to == ["pubs@example.org"]
    # the same link a second time changes nothing and sends nothing
    with commit(), pytest.raises(BadToken):
        services.subscription_confirm(subscriber=subscriber, nonce=nonce)
    assert len(mail.outbox) == 2


def test_confirm_of_gated_publication_waits_for_approval(gated_publication, commit):
    with commit():
        subscriber = request([gated_publication])
    with commit():
        confirm_current_request(subscriber)
    subscription = subscriber.subscriptions.get()
    assert subscription.status == Status.AWAITING_APPROVAL
    assert subscription.export_status == "pending"
    assert len(mail.outbox) == 1  # the confirmation only; no welcome yet

    with commit():
        assert services.subscription_approve(subscription=subscription, by=None)
        assert not services.subscription_approve(subscription=subscription, by=None)
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE and subscription.confirmed_at
    assert len(mail.outbox) == 2
    assert "approved" in mail.outbox[1].subject


def test_reject_ends_request_and_tells_requester(gated_publication, commit):
    with commit():
        subscriber = request([gated_publication])
        confirm_current_request(subscriber)
    subscription = subscriber.subscriptions.get()
    with commit():
        assert services.subscription_reject(subscription=subscription, by=None, note="not staff")
    subscription.refresh_from_db()
    assert subscription.status == Status.UNSUBSCRIBED
    assert subscription.ended_at is not None
    assert "rejected" in subscription.reason
    assert "not able\nto add you" in mail.outbox[-1].body


def test_unsubscribe_is_idempotent_and_recorded_once(publication):
    subscription = make_subscription(publication)
    assert services.subscription_unsubscribe(subscription=subscription, reason="one-click")
    assert not services.subscription_unsubscribe(subscription=subscription, reason="again")
    subscription.refresh_from_db()
    assert subscription.status == Status.UNSUBSCRIBED
    assert subscription.reason == "one-click"
    assert SubscriptionEvent.objects.filter(to_status=Status.UNSUBSCRIBED).count() == 1


def test_request_after_unsubscribe_needs_a_new_confirmation(publication, commit):
    subscription = make_subscription(publication, email="reader@example.org")
    services.subscription_unsubscribe(subscription=subscription, reason="")
    with commit():
        request([publication])
    subscription.refresh_from_db()
    assert subscription.status == Status.PENDING
    assert subscription.ended_at is None
    assert len(mail.outbox) == 1


def test_request_never_renames_a_known_person(publication, commit):
    make_subscription(publication, name="Ann Reader", organization="Ministry")
    request([publication], name="Mallory", organization="Elsewhere")
    subscriber = Subscriber.objects.get()
    assert (subscriber.name, subscriber.organization) == ("Ann Reader", "Ministry")


def test_request_for_suppressed_address_does_nothing(publication, commit):
    services.suppression_add(email="reader@example.org", reason="complained", source="test")
    with commit():
        assert request([publication]) is None
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("bounced", Status.BOUNCED),
        ("complained", Status.COMPLAINED),
        ("unsubscribed", Status.UNSUBSCRIBED),
        ("manual", Status.UNSUBSCRIBED),
    ],
)
def test_suppression_add_ends_open_subscriptions_by_reason(
    publication, other_publication, reason, status
):
    first = make_subscription(publication)
    second = make_subscription(other_publication, status=Status.PENDING)

    services.suppression_add(email="READER@example.org", reason=reason, source="esp")
    again = services.suppression_add(email="reader@example.org", reason="bounced", source="esp")

    assert Suppression.objects.active().count() == 1
    assert again.reason == reason
    for subscription in (first, second):
        subscription.refresh_from_db()
        assert subscription.status == status
        assert subscription.ended_at is not None
    assert not Subscription.objects.deliverable().exists()


def test_suppression_lift_keeps_subscriptions_ended(publication, admin_user):
    subscription = make_subscription(publication)
    suppression = services.suppression_add(
        email="reader@example.org", reason="bounced", source="esp"
    )
    assert services.suppression_lift(suppression=suppression, by=admin_user, note="mailbox fixed")
    assert not services.suppression_lift(suppression=suppression, by=admin_user, note="again")
    suppression.refresh_from_db()
    assert suppression.lifted_at and suppression.lifted_by == admin_user
    assert suppression.lifted_note == "mailbox fixed"
    subscription.refresh_from_db()
    assert subscription.status == Status.BOUNCED
    # the address can be suppressed again later
    services.suppression_add(email="reader@example.org", reason="complained", source="esp")
    assert Suppression.objects.count() == 2


def test_preferences_update_changes_publications_format_and_name(
    publication, other_publication, gated_publication
):
    subscription = make_subscription(publication, name="Ann")
    subscriber = subscription.subscriber
    services.preferences_update(
        subscriber=subscriber,
        name="Ann Reader",
        publications=[other_publication, gated_publication],
        format="text",
        address_proven=True,
    )
    statuses = dict(subscriber.subscriptions.values_list("publication__slug", "status"))
    assert statuses == {
        "monitor": Status.UNSUBSCRIBED,
        "fortnight": Status.ACTIVE,
        "brief": Status.AWAITING_APPROVAL,
    }
    assert set(subscriber.subscriptions.open().values_list("format", flat=True)) == {"text"}
    subscriber.refresh_from_db()
    assert subscriber.name == "Ann Reader"


def test_contact_message_acknowledges_and_notifies_staff(publication, commit):
    with commit():
        message = services.contact_message_create(
            name="Ann",
            email="ann@example.org",
            subject="A question",
            body="Buy cheap pills at spam.example",
            publication=publication,
            ip="192.0.2.1",
        )
    assert message.status == "open"
    by_recipient = {m.to[0]: m for m in mail.outbox}
    assert set(by_recipient) == {"ann@example.org", "pubs@example.org"}
    ack = by_recipient["ann@example.org"]
    # the acknowledgement echoes nothing the sender typed
    assert "pills" not in ack.body and "A question" not in ack.subject
    notification = by_recipient["pubs@example.org"]
    assert notification.reply_to == ["ann@example.org"]
    assert "pills" in notification.body


def test_preferences_update_leaves_publications_no_longer_offered_alone(
    publication, other_publication
):
    retired = make_subscription(other_publication)
    other_publication.active = False
    other_publication.save()
    services.preferences_update(
        subscriber=retired.subscriber,
        name="",
        publications=[publication],
        format="html",
        address_proven=True,
    )
    retired.refresh_from_db()
    assert retired.status == Status.ACTIVE
