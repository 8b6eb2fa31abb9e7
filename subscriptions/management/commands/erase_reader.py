from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subscriptions.erasure import reader_erase
from subscriptions.management.commands.reader_data import address_argument
from subscriptions.readerdata import reader_data, reader_data_summary


class Command(BaseCommand):
    help = (
        "Erase everything held about one reader (GDPR Art. 17); only a keyed hash of the "
        "address stays, on the suppression list, so that it is never mailed again. Asks "
        "first unless --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="the reader's address")
        parser.add_argument("--yes", action="store_true", help="erase without asking")

    def handle(self, *args, email: str, yes: bool, **options) -> None:
        email = address_argument(email)
        document = reader_data(email=email)
        if document is None:
            raise CommandError(f"Nothing is held about {email.lower()}: nothing to erase.")
        if not yes:
            self.stdout.write("\n".join(reader_data_summary(document)[:-1]))
            try:
                answer = input(
                    f"Erase all of this about {email.lower()}? It cannot be undone. [y/N] "
                )
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Cancelled: nothing was erased.")
        erasure = reader_erase(email=email)
        if erasure is None:  # erased by someone else meanwhile
            raise CommandError(f"Nothing is held about {email.lower()}: nothing to erase.")
        self.stdout.write(erasure.summary())
        self.stdout.write(
            "The address stays on the suppression list as a keyed hash only: it is never "
            "mailed again unless its owner subscribes and confirms anew."
        )
