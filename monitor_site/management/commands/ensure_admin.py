from __future__ import annotations

from django.core.management.base import BaseCommand

from monitor_site.accounts import account_create_once


class Command(BaseCommand):
    help = "Create the admin account once and print its password; later runs change nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@localhost")

    def handle(self, *args, username: str, email: str, **options) -> None:
        password = account_create_once(username=username, email=email, superuser=True)
        if password is None:
            self.stdout.write(f"Admin account '{username}' already exists; password unchanged.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Created admin account.\n  user:     {username}\n  password: {password}\n"
                "  (shown once; change it in the admin)"
            )
        )
