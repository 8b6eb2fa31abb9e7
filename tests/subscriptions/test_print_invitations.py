"""print_invitations and the admin's print actions: one invitation per offline reader of a
publication, each page with that reader's address, code and a QR code of their join page."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from subscriptions.models import Subscriber, Subscription
from tests.factories import PublicationFactory
from tests.helpers import ROOT, child_env, member_of, offline_reader, pdf_pages_text, pdf_qr_codes

LEGACY = """email,name,organization,fax,postal_address
,Anna Keller,ETH,,"Rämistrasse 101
8092 Zürich"
,Ivan Petrov,Duma,+7 495 692 8000,
,Jan Nowak,Sejm,+48 22 694 2500,"ul. Wiejska 4
00-902 Warszawa"
reader@example.org,Rea Der,,301-562-8021,
"""


@pytest.fixture
def imported(db, tmp_path, publication):
    path = tmp_path / "legacy.csv"
    path.write_text(LEGACY)
    call_command(
        "import_subscribers",
        str(path),
        publication="monitor",
        source=Subscriber.Source.LEGACY_POSTAL,
        stdout=open("/dev/null", "w"),  # noqa: SIM115 - the report is another test's
    )
    return {s.name: s for s in Subscriber.objects.all()}


def printed(tmp_path, *args: str) -> tuple[list[str], bytes]:
    out = tmp_path / "invitations.pdf"
    call_command("print_invitations", str(out), *args, stdout=open("/dev/null", "w"))  # noqa: SIM115
    data = out.read_bytes()
    return pdf_pages_text(data), data


def test_each_offline_reader_with_an_address_gets_a_letter_page(tmp_path, imported):
    pages, data = printed(tmp_path, "--publication", "monitor")

    with_address = [imported["Anna Keller"], imported["Jan Nowak"]]
    assert len(pages) == len(with_address)
    for page, (text, reader) in enumerate(zip(pages, with_address, strict=True)):
        assert reader.join_code_display in text
        for line in reader.postal_address.splitlines():
            assert line in text
        assert [code.text for code in pdf_qr_codes(data, page)] == [reader.join_url]
    text = " ".join(pages)
    assert imported["Ivan Petrov"].join_code_display not in text  # fax only: no letter
    assert "Rea Der" not in text  # has an email: invited by mail, not by letter


def test_fax_readers_get_fax_sheets_with_their_number(tmp_path, imported):
    Subscriber.objects.filter(name__in=["Ivan Petrov", "Jan Nowak"]).update(
        source=Subscriber.Source.LEGACY_FAX
    )

    pages, data = printed(tmp_path, "--publication", "monitor", "--source", "legacy-fax")

    readers = [imported["Ivan Petrov"], imported["Jan Nowak"]]
    assert len(pages) == 2
    for page, (text, reader) in enumerate(zip(pages, readers, strict=True)):
        assert reader.fax in text and reader.join_code_display in text
        assert [code.text for code in pdf_qr_codes(data, page)] == [reader.join_url]


def test_a_reader_who_joined_is_not_printed_again(tmp_path, imported):
    joined = imported["Anna Keller"]
    Subscription.objects.filter(subscriber=joined).update(status=Subscription.Status.ACTIVE)

    pages, _ = printed(tmp_path, "--publication", "monitor")

    assert len(pages) == 1 and joined.join_code_display not in pages[0]


def test_no_offline_readers_exits_non_zero_and_writes_nothing(tmp_path, transactional_db):
    PublicationFactory()
    out = tmp_path / "none.pdf"

    result = subprocess.run(
        [sys.executable, "manage.py", "print_invitations", "--publication", "monitor", str(out)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert "No offline readers of The Monitor to print" in result.stderr
    assert not out.exists()


def test_readers_without_what_the_sheet_needs_are_named_and_left_out(tmp_path, imported, capsys):
    pages, _ = printed(tmp_path, "--publication", "monitor", "--variant", "fax")

    assert len(pages) == 2  # Ivan Petrov and Jan Nowak have a fax number
    assert "Left out 1 reader(s) without a fax number: Anna Keller" in capsys.readouterr().err


def test_none_with_what_the_sheet_needs_exits_non_zero(tmp_path, imported):
    Subscriber.objects.filter(name="Ivan Petrov").update(postal_address="Okhotny Ryad 1\nMoscow")
    Subscriber.objects.update(fax="")

    with pytest.raises(CommandError, match=r"No offline readers .* \(3 without a fax number\)"):
        call_command("print_invitations", str(tmp_path / "x.pdf"), "--publication", "monitor",
                     "--variant", "fax")  # fmt: skip
    assert not (tmp_path / "x.pdf").exists()


def test_an_unknown_publication_is_named(tmp_path, db):
    with pytest.raises(CommandError, match="No publication with slug 'monitr'"):
        call_command("print_invitations", str(tmp_path / "x.pdf"), "--publication", "monitr")


# --- the admin's actions -------------------------------------------------------------


def post_action(client, action: str, subscriptions) -> object:
    return client.post(
        "/admin/subscriptions/subscription/",
        {"action": action, "_selected_action": [s.pk for s in subscriptions]},
    )


def test_staff_download_the_letters_of_the_selected_readers(client, publication):
    readers = [offline_reader(publication, name=f"Reader {n}") for n in range(3)]
    client.force_login(member_of("Subscription staff", "sam"))

    response = post_action(client, "print_letters", [r.subscriptions.get() for r in readers[:2]])

    assert response["Content-Type"] == "application/pdf"
    assert 'filename="monitor-letters.pdf"' in response["Content-Disposition"]
    pages = pdf_pages_text(response.content)
    assert [readers[0].join_code_display in pages[0], readers[1].join_code_display in pages[1]] == [
        True,
        True,
    ]
    assert len(pages) == 2


def test_readers_of_two_publications_or_none_offline_get_a_message(client, publication):
    other = PublicationFactory(name="Fortnight in Review", slug="fortnight")
    mixed = [
        offline_reader(publication).subscriptions.get(),
        offline_reader(other).subscriptions.get(),
    ]
    online = Subscription.objects.create(
        subscriber=Subscriber.objects.create(email="online@example.org"),
        publication=publication,
        status=Subscription.Status.ACTIVE,
    )
    client.force_login(member_of("Subscription staff", "sam"))

    two = post_action(client, "print_letters", mixed)
    none = post_action(client, "print_fax_sheets", [online])

    assert two.status_code == 302 and none.status_code == 302
    messages = [str(m) for m in client.get(two.url).context["messages"]]
    assert any("one publication" in m for m in messages)
    assert any("none of the selected is an offline reader with a fax number" in m for m in messages)
