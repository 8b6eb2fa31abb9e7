from __future__ import annotations

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand

from issues.models import Publication

SEED = Path(__file__).resolve().parents[2] / "demo" / "monitor-6-11.txt"

# What a real publication would enter in the admin; enough for the demo to send.
DEMO_DETAILS = {
    "description": "Daily analysis of politics and security in Russia and the other "
    "post-Soviet states.",
    "sender_name": "The Monitor",
    "sender_email": "monitor@example.org",
    "reply_to": "pubs@example.org",
    "list_id_domain": "example.org",
}


class Command(BaseCommand):
    help = "Load the demo content: the seed back issue and its publication. Idempotent."

    def handle(self, *args, **options) -> None:
        call_command("import_archive", str(SEED), stdout=self.stdout, stderr=self.stderr)
        publication = Publication.objects.get(slug="monitor")
        changed = [k for k, v in DEMO_DETAILS.items() if not getattr(publication, k)]
        for key in changed:
            setattr(publication, key, DEMO_DETAILS[key])
        if changed:
            publication.save(update_fields=changed)
            self.stdout.write(f"Demo sender details set: {', '.join(changed)}")
        else:
            self.stdout.write("Demo sender details already set.")
