from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from issues.models import Publication
from monitor_site.csvcells import csv_writer
from subscriptions.models import Subscription

COLUMNS = [
    "email",
    "name",
    "organization",
    "publication",
    "status",
    "confirmed_at",
    "source",
    "join_code",
]


def export_rows(subscriptions):
    """One row per subscription (SPEC §3); a request awaiting approval is `pending`; an
    offline reader has no address and their join code."""
    for s in subscriptions:
        yield [
            s.subscriber.email or "",
            s.subscriber.name,
            s.subscriber.organization,
            s.publication.slug,
            s.export_status,
            s.confirmed_at.isoformat() if s.confirmed_at else "",
            s.subscriber.source,
            s.export_join_code,
        ]


class Command(BaseCommand):
    help = "Write every subscription as CSV on stdout: " + ",".join(COLUMNS)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--publication", help="only this publication (slug)")

    def handle(self, *args, publication: str | None, **options) -> None:
        subscriptions = Subscription.objects.select_related("subscriber", "publication").order_by(
            "publication__slug", "subscriber__email", "pk"
        )
        if publication:
            if not Publication.objects.filter(slug=publication).exists():
                raise CommandError(f"No publication with slug {publication!r}.")
            subscriptions = subscriptions.filter(publication__slug=publication)
        writer = csv_writer(self.stdout)
        try:
            writer.writerow(COLUMNS)
            for row in export_rows(subscriptions.iterator(chunk_size=2000)):
                writer.writerow(row)
            self.stdout.flush()
        except BrokenPipeError:
            # The reader of the pipe had enough (`| head`): stop without a traceback,
            # the way the Python documentation's note on SIGPIPE shows.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
