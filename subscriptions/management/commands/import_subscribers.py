from __future__ import annotations

import csv
import io
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from issues.models import Publication
from subscriptions.imports import IMPORT_COLUMNS, INVALID, subscribers_import
from subscriptions.models import Subscriber


def read_rows(data: bytes) -> tuple[list[str], list[tuple[int, dict]]]:
    """CSV rows with the line each starts on. UTF-8 (with or without BOM); legacy
    Windows-1252 exports are accepted too."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    line = reader.line_num + 1
    for row in reader:
        rows.append((line, row))
        line = reader.line_num + 1
    return header, rows


class Command(BaseCommand):
    help = (
        "Import subscribers from a CSV file (columns email,name,organization and optionally "
        "fax,postal_address) into a publication. A row with only a fax number or a postal "
        "address is an offline reader with a join code. Reports every row; never duplicates."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--publication", required=True, help="publication slug")
        parser.add_argument(
            "--source",
            default=Subscriber.Source.IMPORT,
            choices=Subscriber.Source.values,
            help="where the people come from (default: import); the legacy-* lists get an "
            "invitation (with reminders) instead of a confirmation",
        )
        parser.add_argument(
            "--confirmed",
            action="store_true",
            help="subscriptions start active; otherwise each new person with an address gets "
            "a confirmation email (an invitation for the legacy-* sources)",
        )

    def handle(self, *args, file: Path, publication: str, source: str, confirmed: bool, **kw):
        target = Publication.objects.filter(slug=publication).first()
        if target is None:
            raise CommandError(f"No publication with slug {publication!r}.")
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        try:
            header, rows = read_rows(data)
        except csv.Error as exc:
            raise CommandError(f"{file}: not a readable CSV file: {exc}") from None
        if not {"email", "fax", "postal_address"} & set(header):
            raise CommandError(
                f"{file}, line 1: the header must name the columns, with 'email' "
                "(or 'fax' or 'postal_address' for offline readers)."
            )
        unknown = [c for c in header if c not in IMPORT_COLUMNS]
        if unknown:
            raise CommandError(
                f"{file}, line 1: unknown columns {', '.join(unknown)}; "
                f"expected {', '.join(IMPORT_COLUMNS)}."
            )
        report = subscribers_import(
            rows=rows,
            publication=target,
            source=source,
            confirmed=confirmed,
            form=f"import {file.name}" + (" (--confirmed)" if confirmed else ""),
        )
        for row in report.rows:
            text = f"line {row.line}: {row.outcome} {row.who}".rstrip()
            if row.message:
                text += f" ({row.message})"
            style = self.style.ERROR if row.outcome == INVALID else (lambda s: s)
            self.stdout.write(style(text))
        self.stdout.write(self.style.SUCCESS(f"{file.name}: {report.summary()}"))
