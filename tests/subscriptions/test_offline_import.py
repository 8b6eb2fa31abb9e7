"""Importing a legacy list keeps the fax and postal readers: offline subscriptions with a
join code, never mailed; re-imports match on address, fax number or postal address."""

from __future__ import annotations

import csv
import io

import pytest
from django.core import mail
from django.core.management import call_command

from issues.models import Issue
from subscriptions.imports import subscribers_import
from subscriptions.joincodes import ALPHABET
from subscriptions.models import Subscriber, Subscription, SubscriptionEvent
from tests.factories import IssueFactory, VolumeFactory
from tests.helpers import make_subscription, send_in_process

Status = Subscription.Status

LEGACY = (
    "email,name,organization,fax,postal_address\n"
    "ann@example.org,Ann Email,Ministry,,\n"  # 2 created: email only
    ",Bob Fax,Embassy,+1 (202) 555-0101,\n"  # 3 created offline: fax only
    ',Carol Post,,,"12 Rue de la Paix\n75002 Paris"\n'  # 4-5 created offline: postal only
    'dan@example.org,Dan All,Institute,202-555-0102,"1 Main St\nSpringfield"\n'  # 6-7 all three
    "ANN@example.org,Ann Again,,,\n"  # 8 skipped: same address as line 2
    ",Bob Again,,+1 202 555 0101,\n"  # 9 skipped: same fax number as line 3
    ',Carol Again,,,"12 rue de la paix   75002 PARIS"\n'  # 10 skipped: same postal address
    ",Eve,,555-CALL-NOW,\n"  # 11 invalid: letters in the fax number
    ",Frank,,12 34,\n"  # 12 invalid: too few digits
    ",Nobody,Nowhere,,\n"  # 13 invalid: no way to reach them
)


@pytest.fixture
def legacy_file(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(LEGACY)
    return path


def run_import(path, *args: str) -> list[str]:
    out = io.StringIO()
    call_command("import_subscribers", str(path), *args, stdout=out)
    return out.getvalue().splitlines()


def export(*args: str) -> list[dict[str, str]]:
    out = io.StringIO()
    call_command("export_subscribers", *args, stdout=out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def code_of(name: str) -> str:
    return Subscriber.objects.get(name=name).join_code_display


def test_mixed_legacy_file_reports_every_kind_with_its_line(
    publication, legacy_file, commit, settings
):
    with commit():
        lines = run_import(legacy_file, "--publication", "monitor", "--source", "legacy-postal")

    assert lines == [
        "line 2: created ann@example.org",
        f"line 3: created +1 (202) 555-0101 (offline; join code {code_of('Bob Fax')})",
        f"line 4: created 12 Rue de la Paix (offline; join code {code_of('Carol Post')})",
        "line 6: created dan@example.org",
        "line 8: skipped ann@example.org (same address as line 2)",
        "line 9: skipped +1 202 555 0101 (same fax number as line 3)",
        "line 10: skipped 12 rue de la paix   75002 PARIS (same postal address as line 4)",
        "line 11: invalid 555-CALL-NOW (555-CALL-NOW is not a fax number: use digits, spaces "
        "and dashes only.)",
        "line 12: invalid 12 34 (12 34 is not a fax number: it has 4 digits, not 7 to 15.)",
        "line 13: invalid (no email, fax number or postal address)",
        "list.csv: 4 created, 0 updated, 3 skipped, 3 invalid; 2 of the created are offline "
        "readers (fax or post, no email)",
    ]
    statuses = dict(Subscription.objects.values_list("subscriber__name", "status"))
    assert statuses == {
        "Ann Email": Status.PENDING,
        "Bob Fax": Status.OFFLINE,
        "Carol Post": Status.OFFLINE,
        "Dan All": Status.PENDING,
    }
    bob = Subscriber.objects.get(name="Bob Fax")
    assert (bob.email, bob.fax, bob.fax_key, bob.source) == (
        None,
        "+1 (202) 555-0101",
        "+12025550101",
        "legacy-postal",
    )
    assert len(bob.join_code) == 8 and set(bob.join_code) <= set(ALPHABET)
    assert bob.join_url == f"{settings.SITE_URL}/join/{bob.join_code}/"
    # the email readers are invited; nobody without an address is written to
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.org", "dan@example.org"]
    # nothing of an invalid row was written
    assert not Subscriber.objects.filter(name__in=["Eve", "Frank", "Nobody"]).exists()


def test_offline_readers_are_exported_as_offline_with_their_join_code(
    publication, legacy_file, commit
):
    with commit():
        run_import(legacy_file, "--publication", "monitor", "--source", "legacy-fax")
    bob, carol = Subscriber.objects.get(name="Bob Fax"), Subscriber.objects.get(name="Carol Post")

    rows = {(r["email"], r["name"]): r for r in export("--publication", "monitor")}

    assert list(next(iter(rows.values()))) == [
        "email",
        "name",
        "organization",
        "publication",
        "status",
        "confirmed_at",
        "source",
        "join_code",
    ]
    assert {k: (r["status"], r["join_code"], r["source"]) for k, r in rows.items()} == {
        ("ann@example.org", "Ann Email"): ("pending", "", "legacy-fax"),
        ("dan@example.org", "Dan All"): ("pending", "", "legacy-fax"),
        ("", "Bob Fax"): ("offline", bob.join_code, "legacy-fax"),
        ("", "Carol Post"): ("offline", carol.join_code, "legacy-fax"),
    }


def test_sending_an_issue_mails_no_offline_reader(publication, legacy_file, commit, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with commit():
        run_import(legacy_file, "--publication", "monitor", "--source", "legacy-postal")
    make_subscription(publication, email="zed@example.org")
    issue = IssueFactory(volume=VolumeFactory(publication=publication), status="approved")
    mail.outbox.clear()

    send_in_process(issue)

    assert [m.to for m in mail.outbox] == [["zed@example.org"]]
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT
    offline = Subscriber.objects.filter(subscriptions__status=Status.OFFLINE)
    assert offline.count() == 2
    assert not issue.deliveries.filter(subscriber__in=offline).exists()


def test_the_same_file_again_changes_nothing(publication, legacy_file, commit):
    with commit():
        run_import(legacy_file, "--publication", "monitor", "--source", "legacy-postal")
    before = (
        list(Subscriber.objects.order_by("pk").values_list("pk", "email", "join_code", "name")),
        list(Subscription.objects.order_by("pk").values_list("pk", "status", "invited_at")),
        SubscriptionEvent.objects.count(),
    )
    mail.outbox.clear()

    with commit():
        lines = run_import(legacy_file, "--publication", "monitor", "--source", "legacy-postal")

    assert lines[:4] == [
        "line 2: skipped ann@example.org (already pending)",
        "line 3: skipped +1 (202) 555-0101 (already offline)",
        "line 4: skipped 12 Rue de la Paix (already offline)",
        "line 6: skipped dan@example.org (already pending)",
    ]
    assert lines[-1] == "list.csv: 0 created, 0 updated, 7 skipped, 3 invalid"
    after = (
        list(Subscriber.objects.order_by("pk").values_list("pk", "email", "join_code", "name")),
        list(Subscription.objects.order_by("pk").values_list("pk", "status", "invited_at")),
        SubscriptionEvent.objects.count(),
    )
    assert after == before
    assert mail.outbox == []


def test_an_offline_reader_matched_by_fax_gets_the_address_of_a_later_list(
    publication, tmp_path, commit
):
    first = tmp_path / "fax.csv"
    first.write_text("name,fax\nBob Fax,+1 (202) 555-0101\n")
    with commit():
        run_import(first, "--publication", "monitor", "--source", "legacy-fax")
    bob = Subscriber.objects.get()
    second = tmp_path / "email.csv"
    second.write_text("email,name,fax\nbob@example.org,Robert,+1.202.555.0101\n")

    with commit():
        lines = run_import(second, "--publication", "monitor", "--source", "legacy-fax")

    assert lines[0] == "line 2: updated bob@example.org (email, offline -> pending)"
    bob.refresh_from_db()
    assert (bob.email, bob.name, Subscriber.objects.count()) == ("bob@example.org", "Bob Fax", 1)
    subscription = Subscription.objects.get()
    assert subscription.status == Status.PENDING and subscription.invited_at is not None
    assert list(subscription.events.values_list("from_status", "to_status")) == [
        ("", "offline"),
        ("offline", "pending"),
    ]
    assert [m.to for m in mail.outbox] == [["bob@example.org"]]


def test_a_fax_number_is_not_matched_to_a_reader_with_another_address(publication, tmp_path):
    # an office fax shared by two readers who each have an address: two people
    path = tmp_path / "list.csv"
    path.write_text(
        "email,name,fax\nann@example.org,Ann,202 555 0199\nbea@example.org,Bea,202 555 0199\n"
    )
    run_import(path, "--publication", "monitor", "--confirmed")
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "ann@example.org",
        "bea@example.org",
    ]


def test_offline_rows_import_in_a_fixed_number_of_queries(
    publication, django_assert_max_num_queries
):
    def rows(n: int):
        return [
            (line + 2, {"name": f"R{line}", "fax": f"+1 202 555 {line:04d}"}) for line in range(n)
        ]

    with django_assert_max_num_queries(14):
        report = subscribers_import(rows=rows(5), publication=publication)
    assert len(report.offline_created) == 5
    Subscriber.objects.all().delete()
    with django_assert_max_num_queries(45):
        report = subscribers_import(rows=rows(900), publication=publication)
    assert len(report.offline_created) == 900
    assert Subscription.objects.offline(publication).count() == 900
    assert len(set(Subscriber.objects.values_list("join_code", flat=True))) == 900
