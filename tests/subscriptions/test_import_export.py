from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import sys

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from subscriptions.models import Subscriber, Subscription
from subscriptions.services import suppression_add
from tests.factories import PublicationFactory
from tests.helpers import ROOT, child_env, make_subscription

Status = Subscription.Status

BAD_AND_GOOD = (
    "email,name,organization,fax,postal_address\n"
    "ann@example.org,Ann Reader,Ministry,+1 555 0100,\n"  # 2 created
    "not-an-address,Bob,,,\n"  # 3 invalid
    ",Nobody,,,\n"  # 4 invalid: no email, fax or postal address
    'carol@example.org,"Carol\nBcc: x@example.org",,,\n'  # 5-6 invalid: line break
    f"dave@example.org,{'D' * 201},,,\n"  # 7 invalid: too long
    "erin@example.org,Erin,Org,,,extra\n"  # 8 invalid: extra value
    "ANN@example.org,Ann Again,,,\n"  # 9 skipped: same as line 2
    "known@example.org,Known Person,New Org,,\n"  # 10 updated (blank org filled)
    "active@example.org,,,,\n"  # 11 skipped: already active
    "gone@example.org,,,,\n"  # 12 skipped: unsubscribed earlier
    "blocked@example.org,,,,\n"  # 13 skipped: suppressed
    'frank@example.org,Frank,,,"1 Main St\nSpringfield"\n'  # 14-15 created
)


@pytest.fixture
def csv_file(tmp_path):
    def write(text: str, encoding: str = "utf-8"):
        path = tmp_path / "list.csv"
        path.write_bytes(text.encode(encoding))
        return path

    return write


def run_import(path, *args, invalid: str = "") -> str:
    """The report; with `invalid`, the command must then fail with that message."""
    out = io.StringIO()
    with pytest.raises(CommandError, match=invalid) if invalid else contextlib.nullcontext():
        call_command("import_subscribers", str(path), *args, stdout=out)
    return out.getvalue()


def test_import_reports_every_row_and_never_stops_or_duplicates(
    publication, other_publication, csv_file, commit
):
    known = Subscriber.objects.create(email="known@example.org", name="Known Person")
    Subscription.objects.create(subscriber=known, publication=other_publication)
    make_subscription(publication, email="active@example.org")
    make_subscription(publication, email="gone@example.org", status=Status.UNSUBSCRIBED)
    suppression_add(email="blocked@example.org", reason="bounced", source="esp")

    with commit():
        out = run_import(
            csv_file(BAD_AND_GOOD),
            "--publication",
            "monitor",
            "--source",
            "legacy-fax",
            invalid=r"list.csv: 5 invalid rows not imported \(line 3, 4, 5, 7, 8\)",
        )

    lines = out.splitlines()
    expected = [
        "line 2: created ann@example.org",
        "line 3: invalid not-an-address ('not-an-address' is not a valid email address)",
        "line 4: invalid (no email, fax number or postal address)",
        "line 5: invalid carol@example.org (name contains a line break or control character)",
        "line 7: invalid dave@example.org (name is longer than 200 characters)",
        "line 8: invalid erin@example.org (more values than columns)",
        "line 9: skipped ann@example.org (same address as line 2)",
        "line 10: updated known@example.org (subscribed, organization)",
        "line 11: skipped active@example.org (already active)",
        "line 12: skipped gone@example.org (unsubscribed earlier; not resubscribed)",
        "line 13: skipped blocked@example.org (on the suppression list)",
        "line 14: created frank@example.org",
        "list.csv: 2 created, 1 updated, 4 skipped, 5 invalid",
    ]
    assert lines == expected

    ann = Subscriber.objects.get(email="ann@example.org")
    assert (ann.name, ann.organization, ann.fax, ann.source) == (
        "Ann Reader",
        "Ministry",
        "+1 555 0100",
        "legacy-fax",
    )
    assert Subscriber.objects.get(email="frank@example.org").postal_address == (
        "1 Main St\nSpringfield"
    )
    assert Subscription.objects.get(subscriber=ann).status == Status.PENDING
    assert Subscription.objects.get(subscriber__email="gone@example.org").status == (
        Status.UNSUBSCRIBED
    )
    assert not Subscriber.objects.filter(email="blocked@example.org").exists()
    # one invitation (the legacy list's re-permission) per person who got a new pending
    # subscription
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == [
        (address, "The Monitor is moving to email: keep receiving it")
        for address in ("ann@example.org", "frank@example.org", "known@example.org")
    ]

    # the same file again changes nothing and sends nothing
    mail.outbox.clear()
    with commit():
        again = run_import(csv_file(BAD_AND_GOOD), "--publication", "monitor", invalid="5 invalid")
    assert again.splitlines()[-1] == "list.csv: 0 created, 0 updated, 7 skipped, 5 invalid"
    assert Subscriber.objects.count() == 5
    assert mail.outbox == []


def test_import_confirmed_makes_active_subscriptions_and_sends_nothing(
    publication, csv_file, commit
):
    with commit():
        out = run_import(
            csv_file("email,name,organization\nann@example.org,Ann,\nbob@example.org,Bob,\n"),
            "--publication",
            "monitor",
            "--confirmed",
        )
    assert out.splitlines()[-1].endswith("2 created, 0 updated, 0 skipped, 0 invalid")
    assert set(Subscription.objects.values_list("status", flat=True)) == {Status.ACTIVE}
    assert all(Subscription.objects.values_list("confirmed_at", flat=True))
    assert mail.outbox == []


def test_import_reads_legacy_windows_1252_files(publication, csv_file):
    out = run_import(
        csv_file("email,name,organization\nzoe@example.org,Zoë Müller,Café\n", "cp1252"),
        "--publication",
        "monitor",
    )
    assert "created zoe@example.org" in out
    assert Subscriber.objects.get().name == "Zoë Müller"


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("name,organization\nAnn,Org\n", ["--publication", "monitor"], "with 'email'"),
        ("email,phone\na@example.org,1\n", ["--publication", "monitor"], "unknown columns phone"),
        ("email\na@example.org\n", ["--publication", "nope"], "No publication with slug"),
        ("", ["--publication", "monitor"], "with 'email'"),
    ],
)
def test_import_refuses_bad_files_as_a_whole(publication, csv_file, text, args, message):
    with pytest.raises(CommandError, match=message):
        run_import(csv_file(text), *args)
    assert not Subscriber.objects.exists()


def test_import_of_missing_file_is_a_clear_error(publication, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run_import(tmp_path / "missing.csv", "--publication", "monitor")


def test_export_columns_and_values(publication, other_publication, gated_publication):
    active = make_subscription(
        publication, email="ann@example.org", name="Ann", organization="Ministry"
    )
    active.confirmed_at = active.created_at
    active.save()
    make_subscription(other_publication, email="ann@example.org", status=Status.PENDING)
    make_subscription(gated_publication, email="bob@example.org", status=Status.AWAITING_APPROVAL)
    make_subscription(publication, email="carl@example.org", status=Status.COMPLAINED)

    confirmed_at = active.confirmed_at.isoformat()
    out = io.StringIO()
    call_command("export_subscribers", stdout=out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == [
        "email",
        "name",
        "organization",
        "publication",
        "status",
        "confirmed_at",
        "source",
        "join_code",
    ]
    assert rows[1:] == [
        ["bob@example.org", "", "", "brief", "pending", "", "web", ""],
        ["ann@example.org", "Ann", "Ministry", "fortnight", "pending", "", "web", ""],
        ["ann@example.org", "Ann", "Ministry", "monitor", "active", confirmed_at, "web", ""],
        ["carl@example.org", "", "", "monitor", "complained", "", "web", ""],
    ]

    out = io.StringIO()
    call_command("export_subscribers", "--publication", "monitor", stdout=out)
    assert [r[0] for r in csv.reader(io.StringIO(out.getvalue()))] == [
        "email",
        "ann@example.org",
        "carl@example.org",
    ]


def test_export_unknown_publication_is_an_error(publication):
    with pytest.raises(CommandError, match="No publication"):
        call_command("export_subscribers", "--publication", "nope", stdout=io.StringIO())


def test_import_queries_do_not_grow_with_the_rows(publication, django_assert_max_num_queries):
    from subscriptions.imports import subscribers_import

    def rows(prefix: str, n: int):
        return [(line + 2, {"email": f"{prefix}{line}@example.org"}) for line in range(n)]

    # a block is a few look-ups and three bulk inserts (SQLite splits each insert by its
    # parameter limit), not queries per row: 900 rows one by one took over 4,000
    with django_assert_max_num_queries(10):
        report = subscribers_import(rows=rows("small", 5), publication=publication, confirmed=True)
    assert report.counts["created"] == 5
    with django_assert_max_num_queries(40):
        report = subscribers_import(
            rows=rows("large", 900), publication=publication, confirmed=True
        )
    assert report.counts["created"] == 900
    assert Subscription.objects.filter(status="active").count() == 905


def test_export_into_a_pipe_closed_early_ends_without_a_traceback(transactional_db):
    """`export_subscribers | head`: the reader of the pipe goes away after one line."""
    publication = PublicationFactory()
    readers = Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{n:05}@example.org", name=f"Reader {n}") for n in range(3000)
    )
    Subscription.objects.bulk_create(
        Subscription(subscriber=r, publication=publication, status="active") for r in readers
    )
    child = subprocess.Popen(
        [sys.executable, "manage.py", "export_subscribers"],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout.readline().startswith(b"email,name,")
    child.stdout.close()  # far more than a pipe's buffer is still to come
    _, stderr = child.communicate(timeout=60)

    assert b"Traceback" not in stderr, stderr.decode()
    assert child.returncode == 1
