"""The editorial workflow (SPEC section 6): one function per status change.

Each transition locks the issue row, checks its current status and the user's permission,
changes the status and writes one IssueEvent — or raises and changes nothing. They nest
inside a caller's transaction (they open a savepoint then), so delivery can call them
within its own `transaction.atomic()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.utils import timezone

from issues.models import Issue, IssueEvent
from issues.search import archive_changed

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser

Status = Issue.Status

SUBMIT = "issues.submit_issue"
APPROVE = "issues.approve_issue"
SEND = "issues.send_issue"


class WorkflowError(Exception):
    """A transition that the workflow does not allow; nothing was changed."""


class InvalidTransition(WorkflowError):
    """The issue is not in a status from which this transition starts."""


class PermissionDenied(WorkflowError, DjangoPermissionDenied):
    """The user may not make this transition (a view that lets it through answers 403)."""


def _transition(
    *,
    issue: Issue,
    by: User | None,
    sources: Iterable[str],
    target: str,
    permission: str | None,
    note: str = "",
    changes: dict[str, object] | None = None,
) -> Issue:
    """Move `issue` from one of `sources` to `target`, or raise and change nothing.

    `permission` None means no user check (system transitions); otherwise `by` must hold
    it. The passed-in instance is refreshed with the new state."""
    if permission is not None and (by is None or not by.has_perm(permission)):
        who = getattr(by, "get_username", lambda: "nobody")()
        raise PermissionDenied(f"{who} may not move {issue} to {Status(target).label.lower()}.")
    sources = set(sources)
    with transaction.atomic():
        locked = Issue.objects.select_for_update().get(pk=issue.pk)
        if locked.status not in sources:
            allowed = ", ".join(sorted(Status(s).label.lower() for s in sources))
            raise InvalidTransition(
                f"{issue} is {locked.get_status_display().lower()}; "
                f"it must be {allowed} to become {Status(target).label.lower()}."
            )
        if target == Status.IN_REVIEW and not locked.articles.exists():
            raise InvalidTransition(f"{issue} has no article; add one before submitting it.")
        from_status = locked.status
        fields = {"status": target, "updated_at": timezone.now(), **(changes or {})}
        Issue.objects.filter(pk=locked.pk).update(**fields)
        if target == Status.SENT:
            archive_changed()  # the update sends no signal; the archive gains an issue
        IssueEvent.objects.create(
            issue=locked,
            from_status=from_status,
            to_status=target,
            by=by if by is not None and by.is_authenticated else None,
            note=note,
        )
    for name, value in fields.items():
        setattr(issue, name, value)
    return issue


def issue_submit(*, issue: Issue, by: User) -> Issue:
    """draft -> in_review, by an analyst or an editor; the issue needs an article."""
    return _transition(
        issue=issue, by=by, sources=[Status.DRAFT], target=Status.IN_REVIEW, permission=SUBMIT
    )


def issue_approve(*, issue: Issue, by: User) -> Issue:
    """in_review -> approved, by an editor only."""
    return _transition(
        issue=issue, by=by, sources=[Status.IN_REVIEW], target=Status.APPROVED, permission=APPROVE
    )


def issue_return_to_draft(*, issue: Issue, by: User, note: str) -> Issue:
    """in_review or approved -> draft, by an editor, saying why (the note is required)."""
    if not note or not note.strip():
        raise WorkflowError("Say why the issue goes back to draft: the note is required.")
    return _transition(
        issue=issue,
        by=by,
        sources=[Status.IN_REVIEW, Status.APPROVED],
        target=Status.DRAFT,
        permission=APPROVE,
        note=note.strip(),
    )


def issue_schedule(*, issue: Issue, by: User, at: datetime) -> Issue:
    """approved -> scheduled for `at` (an aware datetime in the future), by an editor."""
    if timezone.is_naive(at):
        raise WorkflowError("The scheduled time must carry a time zone.")
    if at <= timezone.now():
        raise WorkflowError("The scheduled time is in the past.")
    return _transition(
        issue=issue,
        by=by,
        sources=[Status.APPROVED],
        target=Status.SCHEDULED,
        permission=SEND,
        note=f"for {at.isoformat()}",
        changes={"scheduled_at": at},
    )


def issue_unschedule(*, issue: Issue, by: User) -> Issue:
    """scheduled -> approved, by an editor; the scheduled time is cleared."""
    return _transition(
        issue=issue,
        by=by,
        sources=[Status.SCHEDULED],
        target=Status.APPROVED,
        permission=SEND,
        changes={"scheduled_at": None},
    )


def issue_start_sending(*, issue: Issue, by: User | None) -> Issue:
    """approved or scheduled -> sending, by an editor; `by` None is the scheduler."""
    return _transition(
        issue=issue,
        by=by,
        sources=[Status.APPROVED, Status.SCHEDULED],
        target=Status.SENDING,
        permission=SEND if by is not None else None,
    )


def issue_mark_sent(*, issue: Issue) -> Issue:
    """sending -> sent, by the delivery pipeline once every message is final."""
    return _transition(
        issue=issue,
        by=None,
        sources=[Status.SENDING],
        target=Status.SENT,
        permission=None,
        changes={"sent_at": timezone.now()},
    )


CANCELLABLE = [
    Status.DRAFT,
    Status.IN_REVIEW,
    Status.APPROVED,
    Status.SCHEDULED,
    Status.SENDING,
]


def issue_cancel(*, issue: Issue, by: User | None, note: str = "") -> Issue:
    """Any status before sent -> cancelled, by an editor; `by` None is the system."""
    return _transition(
        issue=issue,
        by=by,
        sources=CANCELLABLE,
        target=Status.CANCELLED,
        permission=SEND if by is not None else None,
        note=note,
    )


def allowed_transitions(*, issue: Issue, user: User) -> list[str]:
    """The admin's buttons: the editorial transitions `user` may make on `issue` now."""
    offers = {
        "submit": (Status.DRAFT, SUBMIT),
        "approve": (Status.IN_REVIEW, APPROVE),
        "return_to_draft": ((Status.IN_REVIEW, Status.APPROVED), APPROVE),
    }
    names = []
    for name, (sources, permission) in offers.items():
        sources = (sources,) if isinstance(sources, str) else sources
        if issue.status in sources and user.has_perm(permission):
            names.append(name)
    return names
