from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Load the demo content."

    def handle(self, *args, **options) -> None:
        self.stdout.write("No demo content yet.")
