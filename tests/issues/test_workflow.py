from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from issues import services
from issues.models import Issue, IssueEvent
from tests.factories import IssueFactory

S = Issue.Status


def test_analyst_submits_a_draft_and_the_change_is_logged(analyst):
    issue = IssueFactory(articles=1)

    services.issue_submit(issue=issue, by=analyst)

    issue.refresh_from_db()
    assert issue.status == S.IN_REVIEW
    event = IssueEvent.objects.get(issue=issue)
    assert (event.from_status, event.to_status, event.by) == (S.DRAFT, S.IN_REVIEW, analyst)
    assert event.at is not None


def test_analyst_cannot_approve(analyst):
    issue = IssueFactory(status=S.IN_REVIEW, articles=1)

    with pytest.raises(services.PermissionDenied):
        services.issue_approve(issue=issue, by=analyst)

    issue.refresh_from_db()
    assert issue.status == S.IN_REVIEW
    assert not IssueEvent.objects.exists()


def test_editor_approves_an_issue_in_review(editor):
    issue = IssueFactory(status=S.IN_REVIEW, articles=1)

    services.issue_approve(issue=issue, by=editor)

    assert issue.status == S.APPROVED
    issue.refresh_from_db()
    assert issue.status == S.APPROVED


def test_approving_a_draft_is_refused(editor):
    issue = IssueFactory(articles=1)

    with pytest.raises(services.InvalidTransition):
        services.issue_approve(issue=issue, by=editor)

    issue.refresh_from_db()
    assert issue.status == S.DRAFT


def test_submitting_an_issue_without_articles_is_refused(analyst):
    issue = IssueFactory(articles=0)

    with pytest.raises(services.WorkflowError):
        services.issue_submit(issue=issue, by=analyst)
    assert Issue.objects.get(pk=issue.pk).status == S.DRAFT


def test_return_to_draft_needs_an_editor_and_a_note(editor, analyst):
    issue = IssueFactory(status=S.APPROVED, articles=1)

    with pytest.raises(services.PermissionDenied):
        services.issue_return_to_draft(issue=issue, by=analyst, note="typo")
    with pytest.raises(services.WorkflowError):
        services.issue_return_to_draft(issue=issue, by=editor, note="  ")
    services.issue_return_to_draft(issue=issue, by=editor, note="Fix the second paragraph")

    assert issue.status == S.DRAFT
    assert IssueEvent.objects.get(issue=issue).note == "Fix the second paragraph"


def test_a_stale_instance_cannot_skip_the_status_check(editor):
    issue = IssueFactory(status=S.IN_REVIEW, articles=1)
    stale = Issue.objects.get(pk=issue.pk)
    services.issue_approve(issue=issue, by=editor)

    with pytest.raises(services.InvalidTransition):
        services.issue_approve(issue=stale, by=editor)
    assert IssueEvent.objects.count() == 1


def test_schedule_and_unschedule(editor):
    issue = IssueFactory(status=S.APPROVED, articles=1)
    at = timezone.now() + timedelta(hours=2)

    services.issue_schedule(issue=issue, by=editor, at=at)
    assert Issue.objects.get(pk=issue.pk).scheduled_at == at

    services.issue_unschedule(issue=issue, by=editor)
    issue.refresh_from_db()
    assert (issue.status, issue.scheduled_at) == (S.APPROVED, None)


def test_schedule_in_the_past_is_refused(editor):
    issue = IssueFactory(status=S.APPROVED, articles=1)

    with pytest.raises(services.WorkflowError):
        services.issue_schedule(issue=issue, by=editor, at=timezone.now() - timedelta(minutes=1))
    assert Issue.objects.get(pk=issue.pk).status == S.APPROVED


def test_scheduler_starts_sending_and_delivery_marks_sent(db):
    issue = IssueFactory(status=S.SCHEDULED, articles=1)

    with transaction.atomic():  # as delivery calls it, inside its own transaction
        services.issue_start_sending(issue=issue, by=None)
    services.issue_mark_sent(issue=issue)

    issue.refresh_from_db()
    assert issue.status == S.SENT
    assert issue.sent_at is not None
    assert [e.to_status for e in issue.events.all()] == [S.SENDING, S.SENT]


def test_analyst_cannot_send(analyst):
    issue = IssueFactory(status=S.APPROVED, articles=1)

    with pytest.raises(services.PermissionDenied):
        services.issue_start_sending(issue=issue, by=analyst)


def test_a_failed_transition_inside_an_outer_transaction_leaves_it_usable(editor):
    issue = IssueFactory(status=S.SENT, articles=1)

    with transaction.atomic():
        with pytest.raises(services.InvalidTransition):
            services.issue_cancel(issue=issue, by=editor)
        assert Issue.objects.get(pk=issue.pk).status == S.SENT


@pytest.mark.parametrize("status", [S.DRAFT, S.IN_REVIEW, S.APPROVED, S.SCHEDULED, S.SENDING])
def test_cancel_from_any_status_before_sent(editor, status):
    issue = IssueFactory(status=status, articles=1)

    services.issue_cancel(issue=issue, by=editor, note="withdrawn")

    assert Issue.objects.get(pk=issue.pk).status == S.CANCELLED


@pytest.mark.parametrize(
    "transition",
    [
        lambda i, u: services.issue_submit(issue=i, by=u),
        lambda i, u: services.issue_approve(issue=i, by=u),
        lambda i, u: services.issue_return_to_draft(issue=i, by=u, note="x"),
        lambda i, u: services.issue_start_sending(issue=i, by=u),
        lambda i, u: services.issue_cancel(issue=i, by=u),
        lambda i, u: services.issue_mark_sent(issue=i),
    ],
)
def test_a_sent_issue_cannot_change(editor, transition):
    issue = IssueFactory(status=S.SENT, articles=1)

    with pytest.raises(services.WorkflowError):
        transition(issue, editor)

    assert Issue.objects.get(pk=issue.pk).status == S.SENT
    assert not IssueEvent.objects.exists()


@pytest.mark.parametrize(
    ("status", "editable"),
    [
        (S.DRAFT, True),
        (S.IN_REVIEW, True),
        (S.APPROVED, False),
        (S.SCHEDULED, False),
        (S.SENDING, False),
        (S.SENT, False),
        (S.CANCELLED, False),
    ],
)
def test_is_editable(status, editable):
    assert Issue(status=status).is_editable is editable


def test_groups_hold_their_permissions(analyst, editor):
    assert analyst.has_perm("issues.submit_issue")
    assert analyst.has_perm("issues.change_article")
    assert not analyst.has_perm("issues.approve_issue")
    assert not analyst.has_perm("issues.send_issue")
    assert editor.has_perm("issues.approve_issue")
    assert editor.has_perm("issues.send_issue")


def test_allowed_transitions_follow_status_and_permission(analyst, editor):
    draft = IssueFactory(number=1, articles=1)
    review = IssueFactory(number=2, status=S.IN_REVIEW, articles=1)

    assert services.allowed_transitions(issue=draft, user=analyst) == ["submit"]
    assert services.allowed_transitions(issue=review, user=analyst) == []
    assert services.allowed_transitions(issue=review, user=editor) == [
        "approve",
        "return_to_draft",
    ]
