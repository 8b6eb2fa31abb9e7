from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from subscriptions.readerdata import reader_data, reader_data_json, reader_data_summary


def address_argument(email: str) -> str:
    """The EMAIL argument of the reader commands, checked."""
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise CommandError(f"EMAIL: {email!r} is not an email address.") from None
    return email


class Command(BaseCommand):
    help = (
        "Everything held about one reader (GDPR Art. 15): a summary, or with --json the "
        "whole document (layout in the README, 'Readers' data')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="the reader's address")
        parser.add_argument(
            "--json", action="store_true", help="write the whole document as JSON on stdout"
        )

    def handle(self, *args, email: str, json: bool, **options) -> None:
        document = reader_data(email=address_argument(email))
        if document is None:
            raise CommandError(f"Nothing is held about {email.strip().lower()}.")
        if json:
            self.stdout.write(reader_data_json(document), ending="")
        else:
            self.stdout.write("\n".join(reader_data_summary(document)))
