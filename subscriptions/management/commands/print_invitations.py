from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from issues.models import Publication
from monitor_site.pdf import PAPER_SIZES
from subscriptions.conversion import invitation_letters
from subscriptions.letters import VARIANTS, invitation_letters_pdf
from subscriptions.models import Subscriber, Subscription

SOURCES = (Subscriber.Source.LEGACY_POSTAL, Subscriber.Source.LEGACY_FAX)


class Command(BaseCommand):
    help = (
        "Write one invitation per offline reader of a publication to a PDF file: a letter "
        "for a window envelope, or a fax cover sheet, with the reader's join code, the join "
        "page and its QR code."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", metavar="OUT.pdf", help="the file to write")
        parser.add_argument("--publication", required=True, help="publication slug")
        parser.add_argument(
            "--source", choices=SOURCES, help="only the readers from this legacy list"
        )
        parser.add_argument(
            "--variant",
            choices=VARIANTS,
            help="letters (to postal addresses) or fax sheets (to fax numbers); by default "
            "fax sheets for --source legacy-fax, letters otherwise",
        )
        parser.add_argument("--paper", choices=sorted(PAPER_SIZES), default="letter")

    def handle(
        self,
        *args,
        out: str,
        publication: str,
        source: str | None,
        variant: str | None,
        paper: str,
        **options,
    ) -> None:
        target = Publication.objects.filter(slug=publication).first()
        if target is None:
            raise CommandError(f"No publication with slug {publication!r}.")
        variant = variant or ("fax" if source == Subscriber.Source.LEGACY_FAX else "letter")
        readers = Subscription.objects.offline(target, source=source)
        letters, left_out = invitation_letters(readers, variant=variant)
        whom = f"offline readers of {target}" + (f" from the {source} list" if source else "")
        if not letters:
            why = f" ({len(left_out)} without a {_needs(variant)})" if left_out else ""
            raise CommandError(f"No {whom} to print{why}: nothing written.")
        try:
            data = invitation_letters_pdf(letters, publication=target, variant=variant, paper=paper)
        except ValueError as exc:  # an address too long for the envelope's window
            raise CommandError(f"{exc}; nothing written.") from None
        try:
            Path(out).write_bytes(data)
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror or exc}.") from None
        kind = "letters" if variant == "letter" else "fax sheets"
        self.stdout.write(f"{out}: {len(letters)} {kind} for the {whom} ({len(data):,} bytes).")
        if left_out:
            self.stderr.write(
                f"Left out {len(left_out)} reader(s) without a {_needs(variant)}: "
                + ", ".join(str(reader) for reader in left_out[:20])
                + (" …" if len(left_out) > 20 else "")
            )


def _needs(variant: str) -> str:
    return "postal address" if variant == "letter" else "fax number"
