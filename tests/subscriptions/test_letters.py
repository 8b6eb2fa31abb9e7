"""Invitation letters and fax sheets: one page per offline reader, with their address in
the envelope's window, their join page and code, and a QR code that scans."""

from __future__ import annotations

import pytest
from django.conf import settings

from issues.models import MastheadMember
from subscriptions.letters import Letter, invitation_letters_pdf
from tests.factories import PublicationFactory
from tests.helpers import pdf_pages_text, pdf_qr_codes, pdf_text_box

INCH = 25.4


def letter(name: str, organization: str, address: str, fax: str, code: str) -> Letter:
    return Letter(
        name=name,
        organization=organization,
        postal_address=address,
        fax=fax,
        code=code,
        join_url=f"{settings.SITE_URL}/join/{code}/",
    )


READERS = [
    letter(
        "Lukashenka, Alyaksandr",
        "Office of the President",
        "Karl-Marx-Straße 38\n220016 Minsk\nBelarus",
        "+375 17 222 3217",
        "7K3MX9QD",
    ),
    letter(
        "Łucja Wróbel",
        "Uniwersytet Łódzki",
        "ul. Narutowicza 68\n\n90-136 Łódź\nPoland",
        "+48 42 635 40 00",
        "ABCDEFGH",
    ),
    letter("Иван Петров", "", "ул. Тверская, д. 7\nМосква 125009\nРоссия", "", "Z9Z9Z9Z9"),  # noqa: RUF001
    letter("Anna Keller", "ETH", "Rämistrasse 101\n8092 Zürich\nSwitzerland", "", "0123ZZZZ"),
]


def us_window() -> tuple[float, float, float, float]:
    """A #10 envelope's window (1 1/8 x 4 1/2 in, 7/8 in from its left and 1/2 in from its
    bottom) over the top third of a Letter sheet resting in the envelope, less the 1/8 in
    of clear space USPS DMM 601.6.3 asks for on every side."""
    panel = 11 / 3
    left, right = 7 / 8, 7 / 8 + 4.5
    top, bottom = panel - 1 / 2 - 9 / 8, panel - 1 / 2
    clear = 1 / 8
    return tuple(v * INCH for v in (left + clear, top + clear, right - clear, bottom - clear))


# Where the address must stay: left, top, right, bottom in mm from the page's top-left.
WINDOWS = {
    # DIN 5008 Form B: the address field, 20 mm from the left, 45 mm from the top, 85 x 45
    "a4": (20, 45, 20 + 85, 45 + 45),
    "letter": us_window(),
}


@pytest.fixture
def publication(db):
    publication = PublicationFactory()
    for position, (name, role) in enumerate(
        [("Vladimir Socor", "senior_analyst"), ("Ilya Malyakin", "analyst")]
    ):
        MastheadMember.objects.create(
            publication=publication, name=name, role=role, position=position
        )
    return publication


def lines_of(reader: Letter) -> list[str]:
    lines = [reader.name, reader.organization, *reader.postal_address.splitlines()]
    return [line for line in lines if line]


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_each_reader_gets_one_page_with_their_address_code_and_join_page(publication, paper):
    data = invitation_letters_pdf(READERS, publication=publication, paper=paper)

    pages = pdf_pages_text(data)
    assert len(pages) == len(READERS)
    for text, reader in zip(pages, READERS, strict=True):
        grouped = f"{reader.code[:4]}-{reader.code[4:]}"
        assert grouped in text
        assert reader.join_url in text
        for line in lines_of(reader):
            assert line in text
        others = [r for r in READERS if r is not reader]
        assert not any(f"{r.code[:4]}-{r.code[4:]}" in text for r in others)
    first = pages[0]
    assert "The Monitor is moving to email" in first
    assert "A publication of The Jamestown Foundation" in first
    assert "Senior analyst: Vladimir Socor · Analyst: Ilya Malyakin" in first
    assert "pubs@example.org" in first and "301-562-8021" in first
    assert publication.notice in first


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_the_address_lies_inside_the_envelope_window(publication, paper):
    data = invitation_letters_pdf(READERS, publication=publication, paper=paper)

    left, top, right, bottom = WINDOWS[paper]
    for page, reader in enumerate(READERS):
        for line in lines_of(reader):
            box = pdf_text_box(data, page, line)
            assert left <= box[0] and box[2] <= right, (line, box)
            assert top <= box[1] and box[3] <= bottom, (line, box)


def test_din_letters_put_the_return_address_in_the_windows_top_zone(publication):
    data = invitation_letters_pdf(READERS[:1], publication=publication, paper="a4")

    box = pdf_text_box(data, 0, "The Jamestown Foundation, 4516 43rd Street NW")
    assert box[0] >= 20 and box[2] <= 105
    assert box[1] >= 45 and box[3] <= 50  # DIN 5008: the 5 mm above the address zone
    address = pdf_text_box(data, 0, READERS[0].name)
    assert address[1] >= 45 + 5 + 12.7  # below the zone for postal endorsements


@pytest.mark.parametrize(("variant", "paper"), [("letter", "letter"), ("fax", "a4")])
def test_each_pages_qr_code_scans_as_that_readers_join_page(publication, variant, paper):
    data = invitation_letters_pdf(READERS, publication=publication, variant=variant, paper=paper)

    for page, reader in enumerate(READERS):
        codes = pdf_qr_codes(data, page)
        assert [code.text for code in codes] == [reader.join_url]
        assert codes[0].ec_level == "H"
        assert codes[0].width_mm >= 25


def test_a_fax_sheet_has_the_fax_number_and_no_address_window(publication):
    data = invitation_letters_pdf(READERS[:2], publication=publication, variant="fax")

    pages = pdf_pages_text(data)
    assert len(pages) == 2
    first = pages[0]
    assert "FAX" in first
    assert "To: Lukashenka, Alyaksandr Office of the President" in first
    assert "Fax: +375 17 222 3217" in first
    assert "From: The Monitor The Jamestown Foundation" in first
    assert "Email: pubs@example.org" in first
    assert "7K3M-X9QD" in first and READERS[0].join_url in first
    # no window block: neither the postal address nor the return address is printed
    assert "Karl-Marx-Straße" not in first and "Minsk" not in first
    assert "4516 43rd Street NW, Washington DC 20016" in first  # in From, once
    assert first.count("4516 43rd Street NW") == 1
    assert "Fax: +48 42 635 40 00" in pages[1]


def test_names_and_addresses_in_any_script_come_back_intact(publication):
    data = invitation_letters_pdf(READERS, publication=publication, paper="a4")

    pages = pdf_pages_text(data)
    assert "Lukashenka, Alyaksandr" in pages[0] and "Karl-Marx-Straße 38" in pages[0]
    assert "Łucja Wróbel" in pages[1] and "Uniwersytet Łódzki" in pages[1]
    assert "90-136 Łódź" in pages[1]
    assert "Иван Петров" in pages[2] and "ул. Тверская, д. 7" in pages[2]
    assert "Москва 125009" in pages[2]
    assert "8092 Zürich" in pages[3]
    assert b"DejaVuSans" in data  # the bundled font is embedded, whatever the machine has


def test_an_empty_list_of_letters_is_refused(publication):
    with pytest.raises(ValueError, match="no letters to print"):
        invitation_letters_pdf([], publication=publication)


def test_an_address_too_long_for_the_window_is_refused_naming_the_reader(publication):
    long = letter("Jan Kowalski", "Firma", "\n".join(f"line {n}" for n in range(9)), "", "AAAA1111")

    with pytest.raises(ValueError, match=r"Jan Kowalski: the address .* does not fit"):
        invitation_letters_pdf([READERS[0], long], publication=publication, paper="letter")


def test_an_unknown_variant_or_paper_is_refused(publication):
    with pytest.raises(ValueError, match="unknown variant 'telex'"):
        invitation_letters_pdf(READERS, publication=publication, variant="telex")
    with pytest.raises(ValueError, match="unknown paper 'legal'"):
        invitation_letters_pdf(READERS, publication=publication, paper="legal")
