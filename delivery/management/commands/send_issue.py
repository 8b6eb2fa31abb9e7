from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from kombu.exceptions import OperationalError as BrokerDown
from tqdm import tqdm

from delivery import dispatch, health, progress, services
from delivery.models import Delivery, SendJob
from issues import services as editorial
from issues.models import Issue

NOTE_MAX = 1000  # as the admin's cancel form
HEALTH_EVERY = 2  # seconds between two looks at whether the send is stalled


class Command(BaseCommand):
    help = (
        "Start delivering an approved issue, send a test copy of it, or pause, resume or "
        "cancel its delivery (the same rules as the admin's buttons)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="publication slug, e.g. monitor")
        parser.add_argument("volume", type=int)
        parser.add_argument("number", type=int)
        parser.add_argument("--test-to", metavar="EMAIL", help="send one test copy to EMAIL")
        parser.add_argument(
            "--wait", action="store_true", help="show progress until every message is final"
        )
        control = parser.add_mutually_exclusive_group()
        control.add_argument(
            "--pause", action="store_true", help="pause the send: chunks stop within a step"
        )
        control.add_argument("--resume", action="store_true", help="resume a paused send")
        control.add_argument(
            "--cancel",
            action="store_true",
            help="cancel the send for good: what is not sent yet is not sent (needs --note)",
        )
        parser.add_argument("--note", default="", help="why the send is cancelled")

    def handle(
        self,
        *args,
        slug: str,
        volume: int,
        number: int,
        test_to: str | None,
        wait: bool,
        pause: bool = False,
        resume: bool = False,
        cancel: bool = False,
        note: str = "",
        **options,
    ) -> None:
        issue = (
            Issue.objects.select_related("publication", "volume")
            .filter(publication__slug=slug, volume__number=volume, number=number)
            .first()
        )
        if issue is None:
            raise CommandError(f"No issue {slug} volume {volume} number {number}.")
        if (pause or resume or cancel) and test_to:
            raise CommandError("--test-to cannot go with --pause, --resume or --cancel.")
        if pause or resume or cancel:
            self._control(issue, pause=pause, resume=resume, note=note)
            if wait and resume:
                self._wait(issue)
            return
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
        except BrokerDown as exc:
            raise CommandError(services.broker_down_message(issue, exc)) from exc
        self.stdout.write(result.message)
        if wait:
            self._wait(issue)

    def _control(self, issue: Issue, *, pause: bool, resume: bool, note: str) -> None:
        """Pause, resume or cancel the send, as the admin's buttons do."""
        if pause:
            if not services.send_pause(issue=issue):
                raise CommandError(f"{issue} is not sending: nothing to pause.")
            self.stdout.write(
                f"{issue}: paused. Messages already handed to the mail server finish."
            )
        elif resume:
            try:
                resumed = services.send_resume(issue=issue)
            except BrokerDown as exc:
                raise CommandError(services.broker_down_message(issue, exc)) from exc
            if not resumed:
                raise CommandError(f"{issue} is not paused: nothing to resume.")
            self.stdout.write(f"{issue}: sending again.")
        else:
            if issue.status != Issue.Status.SENDING:
                raise CommandError(f"{issue} is not sending: nothing to cancel.")
            if not note.strip():
                raise CommandError("--cancel: say why with --note (the note is required).")
            if len(note.strip()) > NOTE_MAX:
                raise CommandError(f"--note: at most {NOTE_MAX} characters.")
            try:
                dropped = services.send_cancel(issue=issue, note=note.strip())
            except editorial.WorkflowError as exc:
                raise CommandError(f"--cancel: {exc}") from exc
            self.stdout.write(f"{issue}: cancelled; {dropped} queued message(s) will not be sent.")

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
