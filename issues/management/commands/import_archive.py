from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from issues.legacy_import import ArchiveError, import_archive_file
from issues.models import Issue

STATUSES = [Issue.Status.SENT, Issue.Status.DRAFT, Issue.Status.APPROVED]


class Command(BaseCommand):
    help = (
        "Import legacy plain-text issues (header line 'Publication: NAME Volume: V Issue: N'). "
        "Each file is imported whole or not at all; the same file twice creates nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument(
            "--status",
            choices=STATUSES,
            default=Issue.Status.SENT,
            help="sent (default): a back issue, in the archive, never mailed; "
            "approved: ready to send; draft: to be edited.",
        )

    def handle(self, *args, **options) -> None:
        failed = 0
        for path in options["paths"]:
            try:
                result = import_archive_file(path, status=options["status"])
            except ArchiveError as exc:
                failed += 1
                self.stderr.write(str(exc))
                continue
            self.stdout.write(str(result))
        if failed:
            raise CommandError(f"{failed} of {len(options['paths'])} file(s) not imported")
