from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand

from issues import demo
from issues.models import Publication
from subscriptions.demo import load_readers


class Command(BaseCommand):
    help = (
        "Load the demo: the seed back issue, the back issues it cites, Fortnight in Review, "
        "an approved issue ready to send, 25 readers, and an editor and an analyst account "
        "(their passwords printed once; the editor may read the outbox). Idempotent."
    )

    def handle(self, *args, **options) -> None:
        seed = demo.load_seed(self.stdout)
        monitor = seed.publication
        made = demo.load_back_issues(monitor)
        self.stdout.write(f"Demo back issues: {made} created.")
        passwords = demo.load_staff()
        if "editor" in passwords:
            # The demo editor reads what they send: the outbox is in no group.
            get_user_model().objects.get(username="editor").user_permissions.add(
                Permission.objects.get(content_type__app_label="delivery", codename="view_outbox")
            )
        upcoming = demo.load_next_issue(monitor)
        if upcoming is not None:
            self.stdout.write(f"Demo issue ready to send: {upcoming} (approved).")
        fortnight = Publication.objects.get(slug=demo.FORTNIGHT["slug"])
        for report in load_readers(monitor, fortnight):
            self.stdout.write(f"Demo readers: {report.summary()}")
        for account in demo.STAFF:
            if account.username in passwords:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Created the demo {account.group[:-1].lower()} account.\n"
                        f"  user:     {account.username}\n"
                        f"  password: {passwords[account.username]}\n"
                        "  (shown once; change it in the admin)"
                    )
                )
            else:
                self.stdout.write(f"Demo account '{account.username}' already exists.")
