from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from issues.models import Issue
from issues.printing import issue_pdf
from monitor_site.pdf import PAPER_SIZES


class Command(BaseCommand):
    help = "Write the print and fax edition of an issue (any status) to a PDF file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="publication slug, e.g. monitor")
        parser.add_argument("volume", type=int)
        parser.add_argument("number", type=int)
        parser.add_argument("out", metavar="OUT.pdf", help="the file to write")
        parser.add_argument("--paper", choices=sorted(PAPER_SIZES), default="letter")

    def handle(
        self, *args, slug: str, volume: int, number: int, out: str, paper: str, **options
    ) -> None:
        try:
            issue = Issue.objects.cited(slug, volume, number)
        except Issue.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        data = issue_pdf(issue, paper=paper)
        try:
            Path(out).write_bytes(data)
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror or exc}.") from None
        self.stdout.write(f"{out}: the print edition of {issue} ({len(data):,} bytes).")
