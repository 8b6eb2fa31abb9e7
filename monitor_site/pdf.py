"""Printed pages for readers on paper and fax: fpdf2 documents in millimetres.

Every document is set in DejaVu Sans, shipped in `monitor_site/fonts/` (regular and bold,
with its license), so that any name or address (Zürich, Łódź, Лукашенко) prints the same
on every machine; fpdf2 embeds only the glyphs a document uses. QR codes are drawn as
filled rectangles, sharp at any printer or fax resolution."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import segno
from fpdf import FPDF

FONTS = Path(__file__).resolve().parent / "fonts"
FAMILY = "dejavu"
PAPER_SIZES = {"letter": "Letter", "a4": "A4"}
POINT = 25.4 / 72  # mm
# A line of text takes this many times its type size.
LEADING = 1.2
# ISO/IEC 18004 asks for a light margin of four modules around a QR code.
QR_QUIET_MODULES = 4


class Document(FPDF):
    """An fpdf2 document on US Letter or A4 (`paper`: "letter" or "a4"), units in mm,
    set in the bundled font."""

    def __init__(self, paper: str = "letter") -> None:
        if paper not in PAPER_SIZES:
            raise ValueError(f"unknown paper {paper!r}: use one of {', '.join(PAPER_SIZES)}")
        super().__init__(unit="mm", format=PAPER_SIZES[paper])
        self.paper = paper
        self.add_font(FAMILY, "", FONTS / "DejaVuSans.ttf")
        self.add_font(FAMILY, "B", FONTS / "DejaVuSans-Bold.ttf")
        self.set_font(FAMILY, size=11)
        self.set_creator("Monitor")
        # text is placed where the layout says, without fpdf2's padding inside cells
        self.c_margin = 0

    def font(self, size: float, style: str = "") -> None:
        self.set_font(FAMILY, style, size)

    def wrap(self, text: str, width: float, *, size: float, style: str = "") -> list[str]:
        """`text` broken into lines no wider than `width` mm at `size` pt, ready for
        `lines`: a paragraph printed on many pages is broken once. fpdf2 breaks lines
        only on a page, so add one first."""
        self.font(size, style)
        return self.multi_cell(width, text=text, dry_run=True, output="LINES")

    def lines(
        self, lines: Sequence[str], x: float, y: float, *, size: float, style: str = ""
    ) -> float:
        """Set `lines` left-aligned at `x`, the first line's top at `y`; returns the y just
        below the last line."""
        self.font(size, style)
        step = size * LEADING * POINT
        # a line's baseline sits its ascent (about 0.8 of the type size) below its top
        baseline = y + 0.8 * size * POINT + (step - size * POINT) / 2
        for line in lines:
            self.text(x, baseline, line)
            baseline += step
        return y + step * len(lines)

    def paragraph(
        self, text: str, x: float, y: float, width: float, *, size: float, style: str = ""
    ) -> float:
        """`text` wrapped to `width` and set at (x, y); returns the y below it."""
        lines = self.wrap(text, width, size=size, style=style)
        return self.lines(lines, x, y, size=size, style=style)

    def qr_code(self, data: str, x: float, y: float, size: float) -> None:
        """`data` as a QR code with high error correction (it reads with about 30 % of it
        soiled or torn), the symbol `size` mm square with its top-left corner at (x, y).
        The layout keeps `qr_quiet_zone(data, size)` mm clear around it."""
        qr = _qr(data)
        modules = qr.symbol_size(scale=1, border=0)[0]
        unit = size / modules
        self.set_fill_color(0)
        for left, top, width, height in _dark_rectangles(qr):
            self.rect(x + left * unit, y + top * unit, width * unit, height * unit, style="F")

    def qr_quiet_zone(self, data: str, size: float) -> float:
        return size / _qr(data).symbol_size(scale=1, border=0)[0] * QR_QUIET_MODULES


@lru_cache(maxsize=4)
def _qr(data: str) -> segno.QRCode:
    return segno.make(data, error="h", micro=False, boost_error=False)


def _dark_rectangles(qr: segno.QRCode) -> list[tuple[int, int, int, int]]:
    """The dark modules as few rectangles (left, top, width, height in modules): each
    row's runs, a run that repeats in the next row growing downward."""
    rectangles: list[list[int]] = []
    above: dict[tuple[int, int], list[int]] = {}
    for top, row in enumerate(qr.matrix_iter(scale=1, border=0)):
        here: dict[tuple[int, int], list[int]] = {}
        start = None
        for left, dark in enumerate([*row, 0]):
            if dark and start is None:
                start = left
            elif not dark and start is not None:
                run = (start, left)
                if run in above:
                    above[run][3] += 1
                    here[run] = above[run]
                else:
                    here[run] = [start, top, left - start, 1]
                    rectangles.append(here[run])
                start = None
        above = here
    return [(r[0], r[1], r[2], r[3]) for r in rectangles]
