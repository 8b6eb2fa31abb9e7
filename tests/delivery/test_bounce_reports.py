"""Delivery reports of many mail systems (tests/delivery/bounces/, mostly flufl.bounce's
samples): each mapped to the right address and class, permanent ones suppressing it
like an ESP's hard bounce, temporary ones counted, delay notices and auto-replies
changing nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from delivery import bounces
from delivery.models import BounceMessage, Delivery, DeliveryEvent
from issues.models import Issue
from subscriptions.models import Subscription, Suppression
from tests.factories import IssueFactory
from tests.helpers import sent_delivery

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "bounces"
Outcome = BounceMessage.Outcome

# file, the address it names, and what it is: "permanent", "temporary" or None (neither)
REPORTS = [
    ("exim_01.eml", "delangen@its.tudelft.nl", "permanent"),
    ("qmail_06.eml", "ntl@xxx.com", "permanent"),
    ("qmail_07.eml", "user@example.net", "permanent"),
    ("microsoft_01.eml", "djbennett@ikon.com", "permanent"),
    ("postfix_02.eml", "yyyyy@digicool.com", "permanent"),
    ("yahoo_01.eml", "subscribe.motorcycles@listsociety.com", "permanent"),
    ("simple_07.eml", "william.xxxx@sbcglobal.net", "permanent"),
    ("dsn_10.eml", "anne.person@dom.ain", "permanent"),
    ("dsn_temporary.eml", "full.mailbox@example.net", "temporary"),
    ("dsn_05.eml", "pkocmid@atlas.cz", None),
    ("simple_03.eml", "jacobus@geo.co.za", None),
]


@pytest.fixture
def sent_to(publication):
    issue = IssueFactory(volume__publication=publication, status=Issue.Status.SENT)

    def make(address: str) -> Delivery:
        return sent_delivery(issue, address, ago=timedelta(hours=2))

    return make


@pytest.mark.parametrize(("sample", "address", "kind"), REPORTS, ids=[r[0] for r in REPORTS])
def test_each_report_names_its_address_and_class(sample, address, kind, sent_to):
    delivery = sent_to(address)
    sent_to("bystander@example.org")
    raw = (SAMPLES / sample).read_bytes()

    verdict = bounces.message_process(raw, source="maildir")

    events = DeliveryEvent.objects.all()
    if kind is None:
        assert verdict.outcome == Outcome.IGNORED
        assert "delay notice" in verdict.reason
        assert not events.exists()
    else:
        assert verdict.outcome == Outcome.COUNTED, verdict.reason
        (event,) = events
        assert event.delivery_id == delivery.pk and event.esp == "bounce"
        assert event.kind == ("bounced" if kind == "permanent" else "deferred")
    suppressed = list(Suppression.objects.active().values_list("email", flat=True))
    assert suppressed == ([address] if kind == "permanent" else [])
    status = Subscription.objects.get(subscriber__email=address).status
    expected = Subscription.Status.BOUNCED if kind == "permanent" else Subscription.Status.ACTIVE
    assert status == expected
    assert Subscription.objects.get(subscriber__email="bystander@example.org").status == (
        Subscription.Status.ACTIVE
    )
    assert BounceMessage.objects.get().outcome == verdict.outcome


def test_an_auto_reply_changes_nothing(sent_to):
    sent_to("reader@example.net")

    verdict = bounces.message_process((SAMPLES / "auto_reply.eml").read_bytes(), source="stdin")

    assert (verdict.outcome, verdict.reason) == (Outcome.IGNORED, "an automatic reply")
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()


def test_a_report_about_an_address_we_never_mailed_changes_nothing(sent_to):
    sent_to("someone.else@example.org")

    verdict = bounces.message_process((SAMPLES / "exim_01.eml").read_bytes(), source="maildir")

    assert verdict.outcome == Outcome.IGNORED
    assert "delangen@its.tudelft.nl" in verdict.reason
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()


def test_the_same_report_read_twice_counts_once(sent_to):
    sent_to("anne.person@dom.ain")
    raw = (SAMPLES / "dsn_10.eml").read_bytes()

    first = bounces.message_process(raw, source="maildir")
    again = bounces.message_process(raw, source="imap")
    # another copy of it, as a second delivery into the mailbox would give
    copy = bounces.message_process(b"X-Copy: 2\n" + raw, source="maildir")

    assert first.outcome == Outcome.COUNTED
    assert again.duplicate and copy.duplicate
    assert DeliveryEvent.objects.count() == 1 and BounceMessage.objects.count() == 1
