"""The print and fax edition of an issue: one PDF to print, post or fax.

It holds what the web page holds, laid out for paper: the masthead (publication, volume,
issue, date), every article (headline, authors, body), the publication's footer (who
writes it, how to reach it, the copyright notice) and a closing line on how to move to
email. Every page says which issue it belongs to and "Page N of M", since fax pages
arrive loose.

Bodies are the article's Markdown as the site renders it (`render_markdown`), printed
with fpdf2's HTML support, black on white for a fax: links keep their text and print
their address after it in brackets, emphasis is underlined as in typescript (the bundled
font has no italic), and images are replaced by their description, since a print job
fetches nothing from the network.
"""

from __future__ import annotations

import html
import re

from django.conf import settings
from fpdf import FontFace, TextStyle

from issues.markdown import render_markdown
from issues.models import Issue, MastheadMember, Publication
from monitor_site.pdf import FAMILY, Document

MARGIN = 20.0  # mm
FOOTER_HEIGHT = 14.0  # mm kept free at the bottom of every page for its running footer
BODY_SIZE = 11  # pt
BLACK = "#000000"
TAG_STYLES = {
    "a": FontFace(color=BLACK, emphasis="UNDERLINE"),
    "em": FontFace(emphasis="UNDERLINE"),
    "i": FontFace(emphasis="UNDERLINE"),
    "code": FontFace(family=FAMILY),
    "pre": TextStyle(font_family=FAMILY, t_margin=2, b_margin=2, l_margin=6),
    "blockquote": TextStyle(color=BLACK, t_margin=2, b_margin=2, l_margin=8),
    "p": TextStyle(t_margin=2.5, b_margin=0),
    "h3": TextStyle(font_style="B", font_size_pt=13, color=BLACK, t_margin=4, b_margin=1),
    "h4": TextStyle(font_style="B", font_size_pt=12, color=BLACK, t_margin=3, b_margin=1),
    "h5": TextStyle(font_style="B", font_size_pt=11, color=BLACK, t_margin=3, b_margin=1),
    "h6": TextStyle(font_style="B", font_size_pt=11, color=BLACK, t_margin=3, b_margin=1),
    "li": TextStyle(l_margin=6, t_margin=1),
}
_LINK = re.compile(r'<a href="(?P<href>[^"]*)"[^>]*>(?P<text>.*?)</a>', re.DOTALL)
_IMAGE = re.compile(r"<img\b[^>]*>")
_ALT = re.compile(r'\balt="([^"]*)"')
_TAG = re.compile(r"<[^>]+>")
_SPACED = re.compile(r"<(p|ul|ol)(?=[\s>])")
LINE_HEIGHT = 1.3  # times the type size; fpdf2 sets HTML paragraphs solid (1.0)


def masthead_groups(members: list[MastheadMember]) -> list[tuple[str, list[str]]]:
    """The masthead by role, in the roles' order, labelled in the plural where several
    share a role: `[("Senior analysts", [...]), ("Analyst", [...])]`."""
    groups = []
    for role, label in MastheadMember.Role.choices:
        names = [m.name for m in members if m.role == role]
        if names:
            groups.append((f"{label}s" if len(names) > 1 else label, names))
    return groups


def contact_lines(publication: Publication) -> list[str]:
    lines = []
    if publication.contact_email:
        lines.append(f"Email: {publication.contact_email}")
    if publication.contact_fax:
        lines.append(f"Fax: {publication.contact_fax}")
    if publication.contact_postal_address:
        lines.append(f"Post: {' '.join(publication.contact_postal_address.split())}")
    return lines


def closing_line(publication: Publication) -> str:
    site = settings.SITE_URL
    return (
        f"Reading {publication.name} on paper or by fax? It is moving to email. Visit "
        f"{site}/join/ and type the personal code from our letter and your email address, "
        f"or subscribe at {site}/subscribe/."
    )


def print_html(body_html: str) -> str:
    """Rendered article HTML made fit for paper: paragraphs and lists with room
    between their lines, each link followed by its address in brackets (unless its text
    is the address), each image replaced by its description."""

    def link(match: re.Match[str]) -> str:
        href, text = match["href"], match["text"]
        shown = html.unescape(href).removeprefix("mailto:")
        if html.unescape(_TAG.sub("", text)).strip() == shown:
            return match[0]
        return f"{match[0]} ({html.escape(shown)})"

    def image(match: re.Match[str]) -> str:
        alt = _ALT.search(match[0])
        return f"[image: {alt[1]}]" if alt and alt[1] else "[image]"

    spaced = _SPACED.sub(rf'<\1 style="line-height: {LINE_HEIGHT}"', body_html)
    return _IMAGE.sub(image, _LINK.sub(link, spaced))


class _Edition(Document):
    """Pages with the issue's running footer."""

    def __init__(self, issue: Issue, paper: str) -> None:
        super().__init__(paper)
        self.running = (
            f"{issue.publication.name} · Volume {issue.volume.number}, Issue {issue.number}"
        )
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN + FOOTER_HEIGHT - 8)

    def footer(self) -> None:
        self.set_draw_color(0)
        self.set_line_width(0.2)
        top = self.h - MARGIN
        self.line(MARGIN, top, self.w - MARGIN, top)
        self.font(8)
        self.set_xy(MARGIN, top + 1)
        self.cell(self.epw / 2, 4, self.running, align="L")
        self.cell(self.epw / 2, 4, f"Page {self.page_no()} of {{nb}}", align="R")


def issue_pdf(issue: Issue, *, paper: str = "letter") -> bytes:
    """The print edition of `issue` on US Letter or A4 (`paper`), as PDF bytes."""
    publication = issue.publication
    pdf = _Edition(issue, paper)
    pdf.set_title(f"{publication.name}, Volume {issue.volume.number}, Issue {issue.number}")
    pdf.set_author(publication.publisher_name or publication.name)
    pdf.add_page()
    width = pdf.epw

    def block(text: str, *, size: float = BODY_SIZE, style: str = "", after: float = 0) -> None:
        pdf.font(size, style)
        pdf.multi_cell(width, size * 0.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(after)

    def rule(before: float = 2, after: float = 4) -> None:
        pdf.ln(before)
        pdf.set_line_width(0.4)
        pdf.line(MARGIN, pdf.get_y(), pdf.w - MARGIN, pdf.get_y())
        pdf.ln(after)

    block(publication.name, size=26, style="B", after=1)
    meta = f"Volume {issue.volume.number}, Issue {issue.number}"
    if issue.date:
        meta += f" · {issue.date:%B} {issue.date.day}, {issue.date.year}"
    block(meta, size=12)
    if issue.title:
        block(issue.title, size=15, style="B")
    rule()

    for index, article in enumerate(issue.articles.all()):
        if index:
            rule(before=1)
        if article.headline:
            block(article.headline, size=16, style="B", after=1)
        if article.authors:
            block(f"By {article.authors}", size=10, after=1)
        if article.summary:
            block(article.summary, size=BODY_SIZE, style="B", after=2)
        pdf.font(BODY_SIZE)
        pdf.write_html(
            print_html(article.body_html or render_markdown(article.body)),
            font_family=FAMILY,
            tag_styles=TAG_STYLES,
            li_prefix_color=(0, 0, 0),
            table_line_separators=True,
        )
        if article.region_list:
            block(f"Regions: {', '.join(article.region_list)}", size=9, after=1)

    rule(before=2)
    about = []
    if publication.publisher_name:
        about.append(f"a publication of {publication.publisher_name}")
    groups = masthead_groups(list(publication.masthead.all()))
    if groups:
        people = "; ".join(f"{label.lower()} {', '.join(names)}" for label, names in groups)
        about.append(f"researched and written under the direction of {people}")
    if about:
        block(f"{publication.name} is {', '.join(about)}.", size=9, after=1.5)
    for line in contact_lines(publication):
        block(line, size=9)
    if publication.notice:
        pdf.ln(1.5)
        block(publication.notice, size=9)
    rule(before=3, after=3)
    block(closing_line(publication), size=11, style="B")
    return bytes(pdf.output())
