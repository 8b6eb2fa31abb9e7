"""Erasing a reader (GDPR Art. 17): nothing about the address stays in any table, the
issues' counts do not change, the address is never mailed again unless its owner
subscribes and confirms anew, and a staff import skips it."""

from __future__ import annotations

import io

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse

from delivery import chunk, reports
from delivery import services as delivery
from delivery.models import ERASED_EMAIL, Delivery, SendJob
from issues.models import Issue
from subscriptions import services
from subscriptions.erasure import reader_erase
from subscriptions.hashing import address_hash
from subscriptions.mailbox import mailbox
from subscriptions.models import Subscriber, Subscription, Suppression
from subscriptions.readerdata import reader_data
from tests.factories import IssueFactory
from tests.helpers import member_of, reader_with_history, send_in_process, text_holding

EMAIL = "a.lice+news@gmail.com"


@pytest.fixture
def history(publication):
    return reader_with_history(publication, EMAIL)


def _figures(issue: Issue):
    report = reports.issue_report(issue=issue, job=SendJob.objects.filter(issue=issue).first())
    return report.counts, report.events, report.machine, report.failure_reasons


def test_erasure_leaves_no_trace_of_the_address_in_any_table(history):
    # the address, its mailbox form (the cooldowns' key), the name, the IPs kept
    needles = [EMAIL, mailbox(EMAIL), "Alice Example", "203.0.113.8", "203.0.113.9"]
    assert mailbox(EMAIL) == "alice@gmail.com"
    assert all(text_holding(needle) for needle in needles)

    erasure = reader_erase(email=EMAIL, by=history.staff)

    assert erasure is not None
    for needle in needles:
        assert text_holding(needle) == [], needle
    # someone else's offline row, whose code was typed with the address, stays
    assert Subscriber.objects.filter(pk=history.offline.pk, name="Bob Offline").exists()


def test_only_a_keyed_hash_of_the_address_stays_on_the_suppression_list(history):
    reader_erase(email=EMAIL.upper(), by=history.staff)

    (entry,) = Suppression.objects.all()
    assert entry.email == ""
    assert entry.email_hash == address_hash(EMAIL) != address_hash(EMAIL, secret="other key")
    assert entry.reason == Suppression.Reason.ERASED
    assert entry.lifted_at is None
    assert services.is_suppressed(EMAIL)
    assert reader_data(email=EMAIL)["suppressions"][0]["reason"] == "erased"


def test_each_issue_keeps_its_counts(history):
    before = [_figures(issue) for issue in history.issues]
    assert before[0][1]["opened"] == (1, 1)  # the reader's own open
    assert before[0][2]["opened"] == (1, 1)  # the privacy proxy's, apart

    assert before[1][3] == [(f"SMTP 550 5.1.1 <{EMAIL.upper()}>: Recipient address rejected", 1)]

    reader_erase(email=EMAIL, by=history.staff)

    after = [_figures(issue) for issue in history.issues]
    assert [figures[:3] for figures in after] == [figures[:3] for figures in before]
    # the refusal is still counted under its reason, the address taken out of it
    assert after[1][3] == [(f"SMTP 550 5.1.1 <{ERASED_EMAIL}>: Recipient address rejected", 1)]
    rows = Delivery.objects.filter(issue__in=history.issues)
    assert set(rows.values_list("email", "subscriber")) == {(ERASED_EMAIL, None)}


def test_the_admin_log_says_who_erased_a_reader_and_not_whom(history):
    reader_erase(email=EMAIL, by=history.staff)

    (entry,) = LogEntry.objects.all()
    assert entry.user == history.staff
    assert entry.action_flag == DELETION
    assert entry.object_id is None
    assert entry.object_repr == "An erased reader"
    assert "Erased at the reader's request" in entry.change_message
    assert "subscribers: 1, subscriptions: 1" in entry.change_message
    assert EMAIL not in entry.change_message and EMAIL not in entry.object_repr


def test_the_next_issue_skips_the_address_even_if_it_is_put_back_by_hand(history, publication):
    reader_erase(email=EMAIL, by=history.staff)
    # staff add the address again past every service: the hash still stops it
    again = Subscriber.objects.create(email=EMAIL)
    active = Subscription.Status.ACTIVE
    subscription = Subscription.objects.create(
        subscriber=again, publication=publication, status=active
    )
    others = Subscriber.objects.create(email="bob@example.org")
    Subscription.objects.create(subscriber=others, publication=publication, status=active)
    issue = IssueFactory(volume__publication=publication, number=13, status=Issue.Status.APPROVED)

    assert reports.audience_size(issue) == 1
    assert not Subscription.objects.deliverable().filter(pk=subscription.pk).exists()
    mail.outbox.clear()
    send_in_process(issue)

    assert list(Delivery.objects.filter(issue=issue).values_list("email", flat=True)) == [
        "bob@example.org"
    ]
    assert [m.to for m in mail.outbox] == [["bob@example.org"]]


def test_a_row_queued_before_the_erasure_is_skipped_at_sending(history, publication):
    issue = IssueFactory(volume__publication=publication, number=13, status=Issue.Status.APPROVED)
    delivery.send_start(issue=issue)
    (queued,) = Delivery.objects.filter(issue=issue, status=Delivery.Status.QUEUED)

    reader_erase(email=EMAIL, by=history.staff)
    chunk.chunk_send(issue_id=issue.pk, lo=queued.pk, hi=queued.pk)

    queued.refresh_from_db()
    assert (queued.status, queued.email) == (Delivery.Status.SKIPPED, ERASED_EMAIL)
    assert [m for m in mail.outbox if EMAIL in m.to and "Issue 13" in m.subject] == []


def test_a_later_subscribe_starts_a_fresh_double_opt_in_whose_confirmation_lifts_it(
    history, publication, commit
):
    reader_erase(email=EMAIL, by=history.staff)
    mail.outbox.clear()

    with commit():
        subscriber = services.subscription_request(
            email=EMAIL,
            name="",
            organization="",
            publications=[publication],
            ip="198.51.100.1",
            form="web:/subscribe/",
        )
    assert subscriber is not None
    assert [m.to for m in mail.outbox] == [[EMAIL]]
    assert "confirm" in mail.outbox[0].subject.lower()
    assert services.is_suppressed(EMAIL)  # until the owner confirms
    assert subscriber.subscriptions.get().status == Subscription.Status.PENDING

    nonce = Subscriber.objects.values_list("confirm_nonce", flat=True).get(pk=subscriber.pk)
    with commit():
        services.subscription_confirm(subscriber=subscriber, nonce=nonce, ip="198.51.100.1")

    assert not services.is_suppressed(EMAIL)
    (entry,) = Suppression.objects.all()
    assert entry.reason == Suppression.Reason.ERASED and entry.lifted_at is not None
    issue = IssueFactory(volume__publication=publication, number=13, status=Issue.Status.APPROVED)
    send_in_process(issue)
    assert Delivery.objects.filter(issue=issue, email=EMAIL).exists()


def test_a_staff_import_skips_the_erased_address_as_suppressed(history, tmp_path):
    reader_erase(email=EMAIL, by=history.staff)
    csv = tmp_path / "list.csv"
    csv.write_text(f"email,name,organization\n{EMAIL},Alice,Example Org\nnew@example.org,New,\n")
    out = io.StringIO()

    call_command("import_subscribers", str(csv), publication="monitor", confirmed=True, stdout=out)

    assert "on the suppression list" in out.getvalue()
    assert not Subscriber.objects.filter(email=EMAIL).exists()
    assert Subscriber.objects.filter(email="new@example.org").exists()


def test_erase_reader_asks_and_a_no_changes_nothing(history, monkeypatch):
    before = reader_data(email=EMAIL)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")

    with pytest.raises(CommandError, match="nothing was erased"):
        call_command("erase_reader", EMAIL, stdout=io.StringIO())

    after = reader_data(email=EMAIL)
    assert {k: v for k, v in after.items() if k != "generated_at"} == {
        k: v for k, v in before.items() if k != "generated_at"
    }


def test_erase_reader_with_a_yes_erases(history, monkeypatch):
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "yes")
    out = io.StringIO()

    call_command("erase_reader", EMAIL, stdout=out)

    assert asked and EMAIL in asked[0]
    assert "Erased at the reader's request" in out.getvalue()
    assert not Subscriber.objects.filter(email=EMAIL).exists()
    assert text_holding(EMAIL) == []


def test_erase_reader_yes_does_not_ask(history, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked"))

    call_command("erase_reader", EMAIL, yes=True, stdout=io.StringIO())

    assert not Subscriber.objects.filter(email=EMAIL).exists()


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("nobody@example.org", "Nothing is held about nobody@example.org"),
        ("not-an-address", "'not-an-address' is not an email address"),
    ],
)
def test_erase_reader_refuses_an_unknown_or_bad_address(history, argument, message):
    with pytest.raises(CommandError, match=message):
        call_command("erase_reader", argument, yes=True, stdout=io.StringIO())
    assert Subscriber.objects.filter(email=EMAIL).exists()


def test_subscription_staff_erase_from_the_admin_after_a_confirmation_page(history, client):
    client.force_login(member_of("Subscription staff", "clerk"))
    changelist = reverse("admin:subscriptions_subscriber_changelist")
    chosen = {"action": "erase_readers", "_selected_action": [history.subscriber.pk]}

    page = client.post(changelist, chosen)
    assert page.status_code == 200
    assert "This cannot be undone" in page.content.decode()
    assert Subscriber.objects.filter(email=EMAIL).exists()

    done = client.post(changelist, {**chosen, "apply": "1"}, follow=True)

    assert "1 reader erased;" in done.content.decode()
    assert not Subscriber.objects.filter(email=EMAIL).exists()
    assert LogEntry.objects.get(object_repr="An erased reader").user.username == "clerk"


def test_the_erase_page_of_a_subscriber_needs_the_erase_permission(history, client):
    erase = reverse("admin:subscriptions_subscriber_erase", args=[history.subscriber.pk])
    client.force_login(member_of("Editors", "editor"))
    assert client.post(erase).status_code == 403

    client.force_login(member_of("Subscription staff", "clerk"))
    assert (
        "Erase this reader"
        in client.get(
            reverse("admin:subscriptions_subscriber_change", args=[history.subscriber.pk])
        ).content.decode()
    )
    assert client.get(erase).status_code == 200
    done = client.post(erase, follow=True)

    assert done.redirect_chain[-1][0] == reverse("admin:subscriptions_subscriber_changelist")
    assert "1 reader erased;" in done.content.decode()
    assert not Subscriber.objects.filter(email=EMAIL).exists()


def test_with_the_outbox_backend_the_messages_to_the_address_go_too(
    history, settings, tmp_path, commit
):
    from django.core.mail import EmailMessage

    settings.EMAIL_BACKEND = "monitor_site.outbox.OutboxBackend"
    settings.OUTBOX_DIR = tmp_path
    EmailMessage("Welcome", "Hello", "monitor@example.org", [EMAIL.upper()]).send()
    EmailMessage(
        "Contact form",
        "A question",
        "monitor@example.org",
        ["editors@example.org"],
        reply_to=[EMAIL],
    ).send()
    EmailMessage("Other", "Hello", "monitor@example.org", ["bob@example.org"]).send()

    with commit():
        reader_erase(email=EMAIL, by=history.staff)

    (left,) = tmp_path.glob("*.eml")
    assert b"bob@example.org" in left.read_bytes()
