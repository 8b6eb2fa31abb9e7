from __future__ import annotations

import pytest
from django.urls import reverse

from issues.models import Article, Issue, IssueEvent
from tests.factories import IssueFactory

S = Issue.Status


def change_url(issue: Issue) -> str:
    return reverse("admin:issues_issue_change", args=[issue.pk])


def transition_url(issue: Issue, name: str) -> str:
    return reverse("admin:issues_issue_transition", args=[issue.pk, name])


def management(prefix: str, total: int = 0, initial: int = 0) -> dict[str, int]:
    return {
        f"{prefix}-TOTAL_FORMS": total,
        f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }


def test_add_page_suggests_the_next_number_in_the_current_volume(client, analyst):
    IssueFactory(number=11, articles=1)
    client.force_login(analyst)

    response = client.get(reverse("admin:issues_issue_add"))

    form = response.context["adminform"].form
    assert form.initial["number"] == 12
    assert form.initial["volume"] == Issue.objects.get().volume_id


def test_analyst_drafts_an_issue_with_an_article(client, analyst, publication, volume):
    client.force_login(analyst)

    response = client.post(
        reverse("admin:issues_issue_add"),
        {
            "publication": publication.pk,
            "volume": volume.pk,
            "number": 12,
            "title": "",
            "date": "",
            **management("articles", total=1),
            "articles-0-position": 0,
            "articles-0-headline": "Belarus looks east",
            "articles-0-slug": "belarus-looks-east",
            "articles-0-body": "Lukashenka **insists**.",
            **management("events"),
        },
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    issue = Issue.objects.get(number=12)
    assert issue.status == S.DRAFT
    assert issue.articles.get().body_html == "<p>Lukashenka <strong>insists</strong>.</p>"


def test_analyst_sees_submit_but_not_approve(client, analyst):
    issue = IssueFactory(articles=1)
    client.force_login(analyst)

    page = client.get(change_url(issue)).content.decode()

    assert "Submit for review" in page
    assert 'value="Approve"' not in page


def test_analyst_submits_but_cannot_approve(client, analyst):
    issue = IssueFactory(articles=1)
    client.force_login(analyst)

    client.post(transition_url(issue, "submit"))
    issue.refresh_from_db()
    assert issue.status == S.IN_REVIEW

    response = client.post(transition_url(issue, "approve"), follow=True)
    issue.refresh_from_db()
    assert issue.status == S.IN_REVIEW
    assert "may not" in response.content.decode()


def test_editor_approves_and_the_log_shows_it(client, editor):
    issue = IssueFactory(status=S.IN_REVIEW, articles=1)
    client.force_login(editor)

    response = client.post(transition_url(issue, "approve"), follow=True)

    issue.refresh_from_db()
    assert issue.status == S.APPROVED
    page = response.content.decode()
    assert "Status changes" in page
    assert IssueEvent.objects.get().by == editor


def test_editor_returns_an_issue_to_draft_with_a_note(client, editor):
    issue = IssueFactory(status=S.APPROVED, articles=1)
    client.force_login(editor)

    client.post(transition_url(issue, "return_to_draft"), {"note": "Check the dates"})

    issue.refresh_from_db()
    assert issue.status == S.DRAFT
    assert IssueEvent.objects.get().note == "Check the dates"


def test_transitions_need_a_post(client, editor):
    issue = IssueFactory(status=S.IN_REVIEW, articles=1)
    client.force_login(editor)

    assert client.get(transition_url(issue, "approve")).status_code == 405
    assert Issue.objects.get(pk=issue.pk).status == S.IN_REVIEW


@pytest.mark.parametrize("status", [S.APPROVED, S.SENT])
def test_approved_and_sent_issues_are_read_only(client, editor, status):
    issue = IssueFactory(status=status, articles=1)
    client.force_login(editor)

    page = client.get(change_url(issue)).content.decode()
    assert 'name="_save"' not in page
    assert 'name="articles-0-body"' not in page

    response = client.post(
        change_url(issue),
        {
            "publication": issue.publication_id,
            "volume": issue.volume_id,
            "number": issue.number,
            "title": "Changed",
            **management("articles", total=1, initial=1),
            "articles-0-id": issue.articles.get().pk,
            "articles-0-issue": issue.pk,
            "articles-0-body": "Rewritten",
            **management("events"),
        },
    )
    assert response.status_code == 403
    issue.refresh_from_db()
    assert issue.title == ""
    assert Article.objects.get().body.startswith("The leadership seems")


def test_changelist_query_count_does_not_grow_with_issues(
    client, editor, django_assert_max_num_queries
):
    IssueFactory(number=1, articles=1)
    client.force_login(editor)
    url = reverse("admin:issues_issue_changelist")
    with django_assert_max_num_queries(12) as few:
        client.get(url)
    for number in range(2, 30):
        IssueFactory(number=number, articles=0)

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert response.status_code == 200


def test_change_page_query_count_does_not_grow_with_articles_or_events(
    client, editor, django_assert_max_num_queries
):
    from issues import services

    small = IssueFactory(number=1, articles=1)
    big = IssueFactory(number=2, articles=8)
    for issue in (small, big):
        services.issue_submit(issue=issue, by=editor)
        services.issue_return_to_draft(issue=issue, by=editor, note="again")
    for _ in range(3):
        services.issue_submit(issue=big, by=editor)
        services.issue_return_to_draft(issue=big, by=editor, note="again")
    client.force_login(editor)
    with django_assert_max_num_queries(12) as few:
        client.get(change_url(small))

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(change_url(big))
    assert response.status_code == 200
