"""Admin actions need the change permission: a user who may only view the subscription
lists is offered none of them, and posting one anyway changes nothing."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from subscriptions.models import ContactMessage, Subscription, Suppression
from subscriptions.services import suppression_add
from tests.factories import StaffFactory
from tests.helpers import make_subscription, member_of, offline_reader

Status = Subscription.Status
CHANGELIST = "/admin/subscriptions/{}/"
# (model, action) for every action of the subscription admin
ACTIONS = [
    ("subscription", "unsubscribe"),
    ("subscription", "send_confirmation"),
    ("subscription", "print_letters"),
    ("subscription", "print_fax_sheets"),
    ("subscriptionrequest", "approve"),
    ("subscriptionrequest", "reject"),
    ("suppression", "lift"),
    ("contactmessage", "mark_answered"),
]
MODELS = ("subscriber", "subscription", "subscriptionevent", "subscriptionrequest")
VIEW_ONLY = [f"subscriptions.view_{m}" for m in (*MODELS, "suppression", "contactmessage")]


@pytest.fixture
def viewer(db) -> Client:
    client = Client()
    client.force_login(StaffFactory(username="viewer", permissions=VIEW_ONLY))
    return client


@pytest.fixture
def subscription_staff(db) -> Client:
    client = Client()
    client.force_login(member_of("Subscription staff", "sam"))
    return client


def offered(client: Client, model: str) -> set[str]:
    response = client.get(CHANGELIST.format(model))
    assert response.status_code == 200
    form = response.context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices}


@pytest.mark.parametrize(("model", "action"), ACTIONS)
def test_an_action_is_offered_only_to_those_who_may_change_the_rows(
    viewer, subscription_staff, model, action
):
    assert action not in offered(viewer, model)
    assert action in offered(subscription_staff, model)


def test_a_viewer_posting_every_action_changes_nothing(
    viewer, subscription_staff, publication, gated_publication, commit
):
    active = make_subscription(publication, email="active@example.org")
    pending = make_subscription(publication, email="pending@example.org", status=Status.PENDING)
    to_approve = make_subscription(
        gated_publication, email="approve@example.org", status=Status.AWAITING_APPROVAL
    )
    to_reject = make_subscription(
        gated_publication, email="reject@example.org", status=Status.AWAITING_APPROVAL
    )
    suppression = suppression_add(email="gone@example.org", reason="bounced", source="esp")
    message = ContactMessage.objects.create(
        name="Ann", email="ann@example.org", subject="Fax", body="Still by fax?"
    )
    on_paper = offline_reader(publication, fax="301-562-8021").subscriptions.get()
    selected = {
        "unsubscribe": active,
        "send_confirmation": pending,
        "print_letters": on_paper,
        "print_fax_sheets": on_paper,
        "approve": to_approve,
        "reject": to_reject,
        "lift": suppression,
        "mark_answered": message,
    }

    def post_every_action(client: Client) -> list[str]:
        """The content types of the answers."""
        answers = []
        for model, action in ACTIONS:
            with commit():
                response = client.post(
                    CHANGELIST.format(model),
                    {
                        "action": action,
                        "_selected_action": [selected[action].pk],
                        "apply": "1",
                        "note": "asked by phone",
                    },
                )
            answers.append(response["Content-Type"])
        return answers

    def states() -> list[object]:
        return [
            *Subscription.objects.order_by("pk").values_list("status", flat=True),
            Suppression.objects.get(pk=suppression.pk).lifted_at is None,
            ContactMessage.objects.get(pk=message.pk).status,
            len(mail.outbox),
        ]

    before = states()
    assert before == [
        Status.ACTIVE,
        Status.PENDING,
        Status.AWAITING_APPROVAL,
        Status.AWAITING_APPROVAL,
        Status.OFFLINE,
        True,
        ContactMessage.Status.OPEN,
        0,
    ]
    assert "application/pdf" not in post_every_action(viewer)
    assert states() == before

    # The same requests from someone who may change the rows do their work.
    answers = post_every_action(subscription_staff)
    assert answers.count("application/pdf") == 2  # the letter and the fax sheet
    assert states() == [
        Status.UNSUBSCRIBED,
        Status.PENDING,
        Status.ACTIVE,
        Status.UNSUBSCRIBED,
        Status.OFFLINE,
        False,
        ContactMessage.Status.ANSWERED,
        3,  # the confirmation, the approval, the rejection
    ]
