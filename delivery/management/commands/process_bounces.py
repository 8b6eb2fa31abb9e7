from __future__ import annotations

import mailbox
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from delivery import bounces

# What an MTA's pipe transport takes as "try again later" (sysexits.h EX_TEMPFAIL).
EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = (
        "Read delivery reports from the bounce mailbox: the IMAP account of "
        "MONITOR_BOUNCE_IMAP_URL, a Maildir (--maildir), or one message on standard input "
        "(--stdin, for an MTA's pipe transport)."
    )

    def add_arguments(self, parser) -> None:
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--maildir", metavar="DIR", help="a Maildir the MTA delivers to")
        source.add_argument("--stdin", action="store_true", help="one message on standard input")
        parser.add_argument(
            "--recipient",
            metavar="ADDRESS",
            default="",
            help="with --stdin: the envelope recipient as the MTA gives it (Postfix: ${recipient})",
        )

    def handle(self, *args, maildir: str | None, stdin: bool, recipient: str, **options) -> None:
        if recipient and not stdin:
            raise CommandError("--recipient goes with --stdin.")
        if stdin:
            raw = sys.stdin.buffer.read()
            if not raw.strip():
                raise CommandError("standard input: no message in it.")
            try:
                summary = bounces.stdin_process(raw, recipient=recipient)
            except DatabaseError as exc:
                # The MTA keeps the message and tries again.
                self.stderr.write(f"standard input: the database is not available: {exc}")
                sys.exit(EX_TEMPFAIL)
        elif maildir:
            path = Path(maildir)
            if not (path / "cur").is_dir() or not (path / "new").is_dir():
                raise CommandError(f"--maildir {maildir}: not a Maildir (no cur/ and new/ in it).")
            try:
                summary = bounces.maildir_process(path)
            except (OSError, mailbox.Error) as exc:
                raise CommandError(f"--maildir {maildir}: {exc}") from exc
        else:
            if not settings.BOUNCE_IMAP_URL:
                raise CommandError(
                    "No bounce mailbox: set MONITOR_BOUNCE_IMAP_URL, or give --maildir DIR "
                    "or --stdin."
                )
            try:
                summary = bounces.imap_process(settings.BOUNCE_IMAP_URL)
            except bounces.Busy as exc:
                raise CommandError(f"The bounce mailbox: {exc}.") from exc
            except (OSError, ValueError) as exc:
                raise CommandError(f"MONITOR_BOUNCE_IMAP_URL: {exc}") from exc
            except Exception as exc:  # imapclient's errors (login refused, no folder)
                raise CommandError(f"MONITOR_BOUNCE_IMAP_URL: {type(exc).__name__}: {exc}") from exc
        self.stdout.write(
            f"{summary.read} message(s) read: {summary.counted} counted, "
            f"{summary.ignored} without consequence, {summary.duplicates} read before, "
            f"{summary.kept} kept aside; {len(summary.suppressed)} address(es) suppressed."
        )
        for reason in summary.kept_reasons:
            self.stdout.write(f"kept aside: {reason}")
