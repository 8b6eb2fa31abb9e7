"""Import of legacy plain-text issues (SPEC section 3, `import_archive`).

The format, as the seed shows it:

    Publication: Monitor Volume: 6 Issue: 11
    Date: 2000-01-17                       (optional; also "January 17, 2000")

    Body paragraphs, separated by blank lines …

    The Monitor is a publication of the Jamestown Foundation. It is researched and
    written under the direction of senior analysts …, and analysts … contact us by
    e-mail at …, by fax at …, or by postal mail at …. Unauthorized reproduction …
    Copyright (c) … Site Maintenance by …

The footer is not article text: it fills the publication's publisher, masthead, contact
channels and notice (only the fields still empty, so an editor's changes stay), and web
debris after the notice is dropped. One file is one issue with one article.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from django.db import transaction
from django.utils.text import slugify

from issues.models import (
    RESERVED_SLUGS,
    Article,
    Issue,
    IssueEvent,
    MastheadMember,
    Publication,
    Volume,
)

HEADER_FORMAT = 'header must be "Publication: NAME Volume: V Issue: N"'
_HEADER = re.compile(
    r"^Publication:\s*(?P<name>.+?)\s+Volume:\s*(?P<volume>\S+)\s+Issue:\s*(?P<issue>\S+)\s*$"
)
_DATE_LINE = re.compile(r"^Date:\s*(?P<value>.*?)\s*$")
_FOOTER = re.compile(
    r"(?:^|(?<=[.!?)\"”]\s))(?P<name>The\s+[^.]{1,80}?)\s+is\s+a\s+publication\s+of\s+"
    r"(?P<publisher>[^.]+)\.",
    re.MULTILINE,
)
_MASTHEAD = re.compile(r"under\s+the\s+direction\s+of\s+(?P<people>.+?)\.(?:\s|$)")
_ROLE = re.compile(r"\b(senior\s+analysts?|analysts?)\s+", re.IGNORECASE)
_TRAILING_AND = re.compile(r"[\s,]*\band\s*$")
_NAME_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")
_EMAIL = re.compile(r"e-?mail\s+(?:at|to)\s+(?P<v>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)", re.IGNORECASE)
_FAX = re.compile(r"\bfax\s+(?:at|to)\s+(?P<v>\+?\d[\d\s().-]*\d)", re.IGNORECASE)
_POSTAL = re.compile(r"postal\s+mail\s+(?:at|to)\s+(?P<v>.+?)\.(?:\s|$)", re.IGNORECASE)
_NOTICE = re.compile(r"\b(?:Unauthorized|Reproduction|Redistribution|Copyright|©)")
# What the web version of the archive appended after the notice.
_DEBRIS = re.compile(
    r"\s*\b(?:Site\s+(?:Maintenance|Design|Hosting)|Web\s*site\s+(?:design|by)|Powered)\s+by\b.*$",
    re.IGNORECASE | re.DOTALL,
)
# Characters that would turn legacy plain text into Markdown markup.
_MD_INLINE = re.compile(r"([\\`*_\[\]])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+-]|\d+[.)])(?=\s|$)")


class ArchiveError(Exception):
    """A file that cannot be imported; `str()` is `path:line: message`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass
class Footer:
    publication_name: str = ""
    publisher: str = ""
    senior_analysts: list[str] = field(default_factory=list)
    analysts: list[str] = field(default_factory=list)
    email: str = ""
    fax: str = ""
    postal_address: str = ""
    notice: str = ""


@dataclass
class ParsedIssue:
    publication_name: str
    volume: int
    number: int
    date: date | None
    body: str  # Markdown
    footer: Footer | None
    source_hash: str


@dataclass
class ImportResult:
    path: str
    outcome: str  # "created" or "unchanged"
    issue: Issue
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        extra = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.path}: {self.outcome} {self.issue} [{self.issue.status}]{extra}"


def _parse_date(value: str) -> date | None:
    for fmt in ("%Y-%m-%d", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def escape_markdown(text: str) -> str:
    """Legacy text is plain: keep `*`, `_`, brackets and list-like line starts literal."""
    lines = []
    for line in text.split("\n"):
        line = _MD_INLINE.sub(r"\\\1", line)
        line = _MD_LINE_START.sub(lambda m: m[1] + m[2][:-1] + "\\" + m[2][-1], line)
        lines.append(line)
    return "\n".join(lines)


def parse_footer(text: str) -> Footer:
    footer = Footer()
    if match := _FOOTER.search(text):
        footer.publication_name = " ".join(match["name"].split())
        publisher = " ".join(match["publisher"].split())
        footer.publisher = publisher[0].upper() + publisher[1:]
    if match := _MASTHEAD.search(text):
        parts = _ROLE.split(match["people"])
        for role, names in zip(parts[1::2], parts[2::2], strict=True):
            names = _TRAILING_AND.sub("", names)
            people = [n.strip() for n in _NAME_SEPARATOR.split(names.strip(" ,")) if n.strip()]
            target = (
                footer.senior_analysts if role.lower().startswith("senior") else footer.analysts
            )
            target.extend(people)
    if match := _EMAIL.search(text):
        footer.email = match["v"].rstrip(".")
    if match := _FAX.search(text):
        footer.fax = match["v"].strip()
    if match := _POSTAL.search(text):
        footer.postal_address = " ".join(match["v"].split())
    if match := _NOTICE.search(text, _POSTAL.search(text).end() if _POSTAL.search(text) else 0):
        footer.notice = " ".join(_DEBRIS.sub("", text[match.start() :]).split())
    return footer


def parse_archive(data: bytes, path: str) -> ParsedIssue:
    """Parse one file, or raise ArchiveError naming the line at fault."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ArchiveError(
            path, line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    normalized = "\n".join(line.rstrip() for line in lines).strip() + "\n"

    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index == len(lines):
        raise ArchiveError(path, 1, f"the file is empty; {HEADER_FORMAT}")
    header = _HEADER.match(lines[index].strip())
    if header is None:
        raise ArchiveError(path, index + 1, HEADER_FORMAT)
    numbers = {}
    for key in ("volume", "issue"):
        value = header[key]
        if not value.isdigit() or int(value) == 0:
            raise ArchiveError(
                path, index + 1, f"{key} must be a positive whole number, got {value!r}"
            )
        numbers[key] = int(value)
    index += 1

    issue_date = None
    body_start = index
    while body_start < len(lines) and not lines[body_start].strip():
        body_start += 1
    if body_start < len(lines) and (date_line := _DATE_LINE.match(lines[body_start].strip())):
        issue_date = _parse_date(date_line["value"])
        if issue_date is None:
            raise ArchiveError(
                path,
                body_start + 1,
                f'date must look like "2000-01-17" or "January 17, 2000", got '
                f"{date_line['value']!r}",
            )
        body_start += 1

    body = "\n".join(line.rstrip() for line in lines[body_start:]).strip()
    footer = None
    if match := _FOOTER.search(body):
        footer = parse_footer(body[match.start() :])
        body = body[: match.start()].strip()
    if not body:
        # Point at the footer if there is one, else at the line after the header.
        at_text = body_start < len(lines) and lines[body_start].strip()
        raise ArchiveError(
            path, body_start + 1 if at_text else index + 1, "the issue has no body text"
        )

    paragraphs = [" ".join(p.split("\n")) for p in re.split(r"\n\s*\n", body)]
    return ParsedIssue(
        publication_name=" ".join(header["name"].split()),
        volume=numbers["volume"],
        number=numbers["issue"],
        date=issue_date,
        body="\n\n".join(escape_markdown(p.strip()) for p in paragraphs if p.strip()),
        footer=footer,
        source_hash=hashlib.sha256(normalized.encode()).hexdigest(),
    )


def _publication_for(parsed: ParsedIssue, path: str) -> tuple[Publication, list[str]]:
    name = parsed.publication_name
    footer_name = parsed.footer.publication_name if parsed.footer else ""
    if footer_name and footer_name.lower().removeprefix("the ").strip() == name.lower():
        name = footer_name  # the header says "Monitor", the footer "The Monitor"
    slug = slugify(name.removeprefix("The ").removeprefix("the "))[:60]
    if not slug or slug in RESERVED_SLUGS:
        raise ArchiveError(path, 1, f"publication name {name!r} gives an unusable address")
    publication, created = Publication.objects.get_or_create(slug=slug, defaults={"name": name})
    return publication, [f"publication {publication.name} created"] if created else []


def _apply_footer(publication: Publication, footer: Footer) -> list[str]:
    """Fill the publication's empty details from the footer; add missing masthead names."""
    notes = []
    updates = {
        "publisher_name": footer.publisher,
        "contact_email": footer.email,
        "contact_fax": footer.fax,
        "contact_postal_address": footer.postal_address,
        "notice": footer.notice,
    }
    changed = [k for k, v in updates.items() if v and not getattr(publication, k)]
    for key in changed:
        setattr(publication, key, updates[key])
    if changed:
        publication.save(update_fields=changed)
        notes.append(f"publication details filled: {', '.join(changed)}")
    people = [(n, MastheadMember.Role.SENIOR_ANALYST) for n in footer.senior_analysts] + [
        (n, MastheadMember.Role.ANALYST) for n in footer.analysts
    ]
    existing = set(publication.masthead.values_list("name", flat=True))
    start = len(existing)
    added = [
        MastheadMember(publication=publication, name=name, role=role, position=start + i)
        for i, (name, role) in enumerate((n, r) for n, r in people if n not in existing)
    ]
    if added:
        MastheadMember.objects.bulk_create(added)
        notes.append(f"masthead: {len(added)} added")
    return notes


def import_archive_file(path: Path | str, *, status: str = Issue.Status.SENT) -> ImportResult:
    """Import one file in its own transaction: all of it, or nothing of it.

    Keyed on (publication, volume, number) plus the file's content hash: the same content
    again is "unchanged"; other content under an existing number is a conflict and
    changes nothing (a published issue is never silently overwritten)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ArchiveError(name, 0, f"cannot read the file: {exc.strerror}") from None
    parsed = parse_archive(data, name)
    with transaction.atomic():
        publication, notes = _publication_for(parsed, name)
        existing = (
            Issue.objects.select_related("publication", "volume")
            .filter(publication=publication, volume__number=parsed.volume, number=parsed.number)
            .first()
        )
        if existing is not None:
            if existing.source_hash == parsed.source_hash:
                return ImportResult(name, "unchanged", existing)
            raise ArchiveError(
                name,
                1,
                f"conflict: {existing} already exists ({existing.get_status_display().lower()}) "
                "with different content; nothing imported",
            )
        if parsed.footer is not None:
            notes += _apply_footer(publication, parsed.footer)
        volume, created = Volume.objects.get_or_create(
            publication=publication,
            number=parsed.volume,
            defaults={"year": parsed.date.year if parsed.date else None},
        )
        if created:
            notes.append(f"volume {volume.number} created")
        issue = Issue.objects.create(
            publication=publication,
            volume=volume,
            number=parsed.number,
            date=parsed.date,
            status=status,
            source_hash=parsed.source_hash,
        )
        Article.objects.create(issue=issue, position=0, body=parsed.body)
        IssueEvent.objects.create(
            issue=issue, from_status="", to_status=status, note=f"Imported from {Path(name).name}"
        )
    return ImportResult(name, "created", issue, notes)
