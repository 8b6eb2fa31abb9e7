from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from tqdm import tqdm

from delivery import dispatch, health, progress, services
from delivery.models import Delivery, SendJob
from issues.models import Issue

HEALTH_EVERY = 2  # seconds between two looks at whether the send is stalled


class Command(BaseCommand):
    help = "Start delivering an approved issue, or send a test copy of it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="publication slug, e.g. monitor")
        parser.add_argument("volume", type=int)
        parser.add_argument("number", type=int)
        parser.add_argument("--test-to", metavar="EMAIL", help="send one test copy to EMAIL")
        parser.add_argument(
            "--wait", action="store_true", help="show progress until every message is final"
        )

    def handle(
        self, *args, slug: str, volume: int, number: int, test_to: str | None, wait: bool, **options
    ) -> None:
        issue = (
            Issue.objects.select_related("publication", "volume")
            .filter(publication__slug=slug, volume__number=volume, number=number)
            .first()
        )
        if issue is None:
            raise CommandError(f"No issue {slug} volume {volume} number {number}.")
        if test_to:
            try:
                validate_email(test_to)
            except ValidationError:
                raise CommandError(f"--test-to: {test_to!r} is not an email address.") from None
            try:
                services.send_test(issue=issue, to=test_to)
            except services.SendError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Sent a test copy of {issue} to {test_to}.")
            return
        try:
            result = services.send_start(issue=issue)
        except services.SendError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(result.message)
        if wait:
            self._wait(issue)

    def _wait(self, issue: Issue) -> None:
        """Until every message is final; a send that stalls (delivery/health.py) ends the
        wait with the reason, instead of waiting forever."""
        counts = progress.progress(issue)
        warned = False
        looked = 0.0
        with tqdm(total=counts["total"], unit="msg", file=self.stderr) as bar:
            while True:
                if time.monotonic() - looked >= HEALTH_EVERY:
                    looked = time.monotonic()
                    state = health.send_health(job=SendJob.objects.filter(issue=issue).first())
                    if state.stalled:
                        raise CommandError(state.message)
                    if state.message and not warned:
                        bar.write(state.message, file=self.stderr)
                        warned = True
                counts = progress.progress(issue)
                done = sum(counts[s] for s in Delivery.FINAL)
                bar.update(done - bar.n)
                if done >= counts["total"]:
                    # The worker that recorded the last row marks the issue sent a
                    # moment later; doing it here too means "Done" is never early.
                    dispatch.finish_if_done(issue_id=issue.pk)
                    break
                time.sleep(0.5)
        summary = ", ".join(f"{s}: {counts[s]}" for s in Delivery.Status.values)
        self.stdout.write(f"Done. {summary}")
        if counts[Delivery.Status.FAILED]:
            raise CommandError(f"{counts[Delivery.Status.FAILED]} messages failed.")
