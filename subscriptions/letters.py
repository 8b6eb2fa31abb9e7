"""Invitation letters and fax cover sheets for the readers still on paper.

One page per reader, telling them the publication is moving to email and how to keep
receiving it: their join page (printed in full and as a QR code) and their personal code.
A layout function of plain data: `Letter` rows in, PDF bytes out; of the database it reads
only the publication's masthead, once.

Envelope windows (`variant="letter"`), in mm from the page's top-left corner:

* `paper="a4"`: DIN 5008 (2011 and 2020 editions), Form B, for DIN lang (DL) and C5/6
  window envelopes. The address field is 85 x 45 mm, 20 mm from the left edge and 45 mm
  from the top: a 5 mm zone for the return address (set small, at most 8 pt), 12.7 mm for
  postal endorsements (three lines, left empty here) and 27.3 mm for the address (six
  lines at 10 pt; more at a smaller size). Text starts 25 mm from the left edge, the
  standard's text margin. Fold marks at 105 and 210 mm, punch mark at 148.5 mm.
* `paper="letter"`: a US #10 window envelope (4 1/8 x 9 1/2 in), whose standard window
  is 1 1/8 x 4 1/2 in, 7/8 in from the envelope's left and 1/2 in from its bottom (the
  envelope makers' standard position). A Letter sheet folded in thirds (3 2/3 in panels),
  its top panel behind the window and resting on the envelope's bottom edge (letter mail
  runs through sorting machines on that edge), shows the window 7/8 to 5 3/8 in from the
  page's left and 2 1/24 to 3 1/6 in from its top. USPS DMM 601.6.3 asks for 1/8 in clear
  between the address and the window's edges however the insert moves, and the sheet has
  1 in of play sideways (8 1/2 in inside 9 1/2 in): the address stays within 1 to 4 1/4 in
  from the left and 2 1/6 to 3 1/24 in from the top (82.55 x 22.23 mm at 25.4, 55.03),
  five lines at 10 pt or six at 8 pt. Fold marks at 3 2/3 and 7 1/3 in.

An address that does not fit its window at 8 pt, the smallest size DIN 5008 allows, is
refused with the reader's name: a letter that shows half an address is not delivered.
`variant="fax"` is a cover sheet without a window, in type large enough for a fax's
98 lines per inch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from issues.models import Publication
from issues.printing import masthead_groups
from monitor_site.pdf import LEADING, POINT, Document
from subscriptions.joincodes import join_code_display

VARIANTS = ("letter", "fax")
INCH = 25.4
LEFT = 25.0  # text margin, mm (DIN 5008; one inch on Letter paper)
RIGHT = 20.0
ADDRESS_SIZES = (10, 9.5, 9, 8.5, 8)  # pt, largest first


@dataclass(frozen=True)
class Letter:
    """One reader on paper, as their letter needs them."""

    name: str
    organization: str
    postal_address: str  # multi-line, as imported
    fax: str
    code: str  # canonical 8 characters, e.g. "7K3MX9QD"
    join_url: str  # absolute: SITE_URL + "/join/<code>/"


@dataclass(frozen=True)
class Window:
    """The part of the page that shows through an envelope's window, in mm."""

    left: float
    top: float
    width: float
    height: float
    text_left: float  # where the lines start: a glyph may reach a little left of its origin
    address_top: float  # where the address itself starts (below the return address)
    return_address: bool  # whether the window shows a return-address line on top
    folds: tuple[float, ...]  # fold marks, mm from the top

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


WINDOWS = {
    "a4": Window(
        20,
        45,
        85,
        45,
        text_left=LEFT,
        address_top=45 + 5 + 12.7,
        return_address=True,
        folds=(105, 148.5, 210),
    ),
    "letter": Window(
        1 * INCH,
        (2 + 1 / 6) * INCH,
        3.25 * INCH,
        (7 / 8) * INCH,
        text_left=1 * INCH + 1,
        address_top=(2 + 1 / 6) * INCH,
        return_address=False,
        folds=(11 / 3 * INCH, 22 / 3 * INCH),
    ),
}


def address_lines(letter: Letter) -> list[str]:
    lines = [letter.name, letter.organization, *letter.postal_address.splitlines()]
    return [" ".join(line.split()) for line in lines if line.strip()]


def invitation_letters_pdf(
    letters: Sequence[Letter],
    *,
    publication: Publication,
    variant: str = "letter",
    paper: str = "letter",
) -> bytes:
    """One page per reader, in the order given: a letter for a window envelope
    (`variant="letter"`) or a fax cover sheet (`variant="fax"`), on US Letter or A4
    (`paper`). Raises ValueError for no letters, an unknown variant or paper, or an
    address that does not fit the envelope's window."""
    if not letters:
        raise ValueError("no letters to print: the list of readers is empty")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    pdf = Document(paper)
    pdf.set_title(f"{publication.name}: moving to email")
    pdf.set_author(publication.publisher_name or publication.name)
    pdf.set_auto_page_break(False)
    pdf.alias_nb_pages(None)  # nothing is numbered; a name may hold any text
    pdf.add_page()  # fpdf2 breaks text into lines only on a page
    layout = _Layout(pdf, publication, variant)
    for index, letter in enumerate(letters):
        if index:
            pdf.add_page()
        layout.page(letter)
    return bytes(pdf.output())


def _masthead_line(publication: Publication) -> str:
    groups = masthead_groups(list(publication.masthead.all()))
    return " · ".join(f"{label}: {', '.join(names)}" for label, names in groups)


def _contact_sentence(publication: Publication) -> str:
    channels = []
    if publication.contact_email:
        channels.append(f"email {publication.contact_email}")
    if publication.contact_fax:
        channels.append(f"fax {publication.contact_fax}")
    if publication.contact_postal_address:
        channels.append(f"write to {' '.join(publication.contact_postal_address.split())}")
    if not channels:
        return ""
    listed = ", ".join(channels[:-1]) + (" or " if len(channels) > 1 else "") + channels[-1]
    return f"Questions? Please {listed}."


class _Layout:
    """Where everything goes on one paper size and variant. What every page shares is
    wrapped once here; `page` sets it again with the reader's own details."""

    def __init__(self, pdf: Document, publication: Publication, variant: str) -> None:
        self.pdf = pdf
        self.publication = publication
        self.fax = variant == "fax"
        self.window = WINDOWS[pdf.paper]
        self.width = pdf.w - LEFT - RIGHT
        # larger type on a fax sheet: a fax prints at 98 or 196 lines per inch
        self.body_size = 13 if self.fax else 11
        self.qr_size = 42 if self.fax else 30
        name = publication.name
        by = "fax" if self.fax else "post"
        wrap = pdf.wrap
        text_width = self.width - (self.qr_size + 8 if self.fax else 0)
        self.masthead = wrap(_masthead_line(publication), self.width, size=9 if self.fax else 8)
        publisher = publication.publisher_name
        self.publisher = f"A publication of {publisher}" if publisher else ""
        self.subject = wrap(
            f"{name} is moving to email", self.width, size=self.body_size + 3, style="B"
        )
        self.body = [
            wrap(text, text_width, size=self.body_size)
            for text in (
                "Dear reader,",
                f"You have been receiving {name} by {by}. {name} is moving to email, and "
                f"we would like to keep sending it to you.",
                "To keep receiving it, visit the web page below or scan the QR code with a "
                "phone's camera, then type your personal code and your email address. "
                "Nothing else is needed: we send one email to confirm the address, and "
                "from then on every issue arrives by email.",
            )
        ]
        self.sign_off = wrap(publisher or name, self.width, size=self.body_size, style="B")
        contact = _contact_sentence(publication)
        if self.fax and contact:
            contact = "Questions? Please reply to us by any of the channels under From above."
        self.contact = wrap(contact, self.width, size=self.body_size) if contact else []
        self.notice_size = 8 if self.fax else 7
        self.notice = (
            wrap(publication.notice, self.width, size=self.notice_size)
            if publication.notice
            else []
        )
        self.return_address = ""
        if publication.contact_postal_address:
            sender = publication.publisher_name or publication.name
            postal = " ".join(publication.contact_postal_address.split())
            self.return_address = postal if postal.startswith(sender) else f"{sender}, {postal}"

    def page(self, letter: Letter) -> None:
        """Fill the current page with `letter`."""
        pdf = self.pdf
        y = self._masthead()
        if self.fax:
            y = self._fax_header(letter, y + 4)
        else:
            self._folds()
            self._address(letter)
            y = 100.0
        qr_x = pdf.w - RIGHT - self.qr_size
        if not self.fax:
            self._qr(letter, qr_x, self.window.top)
        y = pdf.lines(self.subject, LEFT, y, size=self.body_size + 3, style="B") + 3
        if self.fax:
            qr_bottom = self._qr(letter, qr_x, y)
        for paragraph in self.body:
            y = pdf.lines(paragraph, LEFT, y, size=self.body_size) + 2
        if self.fax:
            y = max(y, qr_bottom)
        y = self._join_details(letter, y + 2)
        if self.contact:
            y = pdf.lines(self.contact, LEFT, y + 4, size=self.body_size)
        if not self.fax:  # a fax cover sheet is signed by its From line
            y = pdf.lines(["Yours sincerely,"], LEFT, y + 4, size=self.body_size)
            y = pdf.lines(self.sign_off, LEFT, y + 1, size=self.body_size, style="B")
        notice_top = pdf.h - 12 - len(self.notice) * self.notice_size * LEADING * POINT
        if y > notice_top:
            raise ValueError(f"{letter.name or letter.code}: the letter does not fit one page")
        pdf.lines(self.notice, LEFT, notice_top, size=self.notice_size)

    def _masthead(self) -> float:
        pdf = self.pdf
        y = 12.0
        if self.fax:
            pdf.font(30, "B")
            pdf.text(pdf.w - RIGHT - pdf.get_string_width("FAX"), y + 10, "FAX")
        y = pdf.lines([self.publication.name], LEFT, y, size=22, style="B")
        if self.publisher:
            y = pdf.lines([self.publisher], LEFT, y, size=10)
        return pdf.lines(self.masthead, LEFT, y + 1, size=9 if self.fax else 8)

    def _folds(self) -> None:
        pdf = self.pdf
        pdf.set_line_width(0.2)
        for at in self.window.folds:
            pdf.line(3, at, 8 if at != 148.5 else 6, at)

    def _address(self, letter: Letter) -> None:
        """The return address and the reader's address, inside the envelope's window."""
        pdf, window = self.pdf, self.window
        x = window.text_left
        width = window.right - x - 1
        if window.return_address and self.return_address:
            size = _fitting_size(pdf, [self.return_address], width, 5.0, sizes=(7, 6.5, 6))
            if size:
                pdf.lines([self.return_address], x, window.top, size=size)
        lines = address_lines(letter)
        height = window.bottom - window.address_top
        size = _fitting_size(pdf, lines, width, height, sizes=ADDRESS_SIZES)
        if size is None:
            raise ValueError(
                f"{letter.name or letter.code}: the address ({len(lines)} lines) does not fit "
                f"the envelope window ({width:.0f} x {height:.0f} mm) even at 8 pt"
            )
        pdf.lines(lines, x, window.address_top, size=size)

    def _fax_header(self, letter: Letter, y: float) -> float:
        """To and From, as a fax cover sheet has them."""
        pdf, publication = self.pdf, self.publication
        size = 14
        rows = [
            ("To:", [letter.name, letter.organization], "B"),
            ("Fax:", [letter.fax], "B"),
            ("From:", [publication.name, publication.publisher_name], ""),
            ("Email:", [publication.contact_email], ""),
            ("Fax:", [publication.contact_fax], ""),
            ("Post:", [publication.contact_postal_address], ""),
            ("Pages:", ["1"], ""),
        ]
        value_x = LEFT + 24
        width = pdf.w - RIGHT - value_x
        pdf.set_line_width(0.6)
        pdf.line(LEFT, y, pdf.w - RIGHT, y)
        y += 3
        for label, values, style in rows:
            values = [" ".join(v.split()) for v in values if v and v.strip()]
            if not values:
                continue
            pdf.lines([label], LEFT, y, size=size, style="B")
            for value in values:
                y = pdf.paragraph(value, value_x, y, width, size=size, style=style)
            y += 1.5
        pdf.line(LEFT, y + 1, pdf.w - RIGHT, y + 1)
        return y + 6

    def _qr(self, letter: Letter, x: float, y: float) -> float:
        """The QR code of the join page with its caption; returns the y below them."""
        pdf = self.pdf
        pdf.qr_code(letter.join_url, x, y, self.qr_size)
        caption = "Scan to join"
        pdf.font(8)
        quiet = pdf.qr_quiet_zone(letter.join_url, self.qr_size)
        caption_x = x + (self.qr_size - pdf.get_string_width(caption)) / 2
        pdf.text(caption_x, y + self.qr_size + quiet, caption)
        return y + self.qr_size + quiet + 2

    def _join_details(self, letter: Letter, y: float) -> float:
        """The join address in full and the personal code, large."""
        pdf = self.pdf
        label_size = self.body_size - 1
        y = pdf.lines(["Your join page:"], LEFT, y, size=label_size)
        url_size = _fitting_size(
            pdf, [letter.join_url], self.width, 99, sizes=(15, 14, 13, 12, 11, 10, 9), style="B"
        )
        y = pdf.lines([letter.join_url], LEFT, y + 0.5, size=url_size or 9, style="B") + 3
        y = pdf.lines(["Your personal code:"], LEFT, y, size=label_size)
        code_size = 40 if self.fax else 30
        pdf.set_char_spacing(3)
        y = pdf.lines([join_code_display(letter.code)], LEFT, y + 1, size=code_size, style="B")
        pdf.set_char_spacing(0)
        return y


def _fitting_size(
    pdf: Document,
    lines: list[str],
    width: float,
    height: float,
    *,
    sizes: Sequence[float],
    style: str = "",
) -> float | None:
    """The largest of `sizes` (pt) at which `lines` fit `width` x `height` mm."""
    for size in sizes:
        if len(lines) * size * LEADING * POINT > height:
            continue
        pdf.font(size, style)
        if all(pdf.get_string_width(line) <= width for line in lines):
            return size
    return None
