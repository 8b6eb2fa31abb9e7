"""Sending from the Issue admin, by role: analysts see the preview and preflight and
are refused every sending action; editors preview, test-send, send, schedule, pause,
resume and cancel. Query counts are asserted for every page."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.utils import timezone

from delivery import chunk, preflight, sweep
from delivery.models import Delivery, SendJob
from issues.models import Article, Issue
from subscriptions.models import Subscription, Suppression
from tests.factories import IssueFactory
from tests.helpers import (
    CLOSED_BROKER,
    cache_is_redis,
    form_post,
    member_of,
    running_site,
    status_of,
    url,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst() -> User:
    return member_of("Analysts", "analyst")


@pytest.fixture
def editor() -> User:
    return member_of("Editors", "editor")


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- preview and preflight ---------------------------------------------------------


def test_editor_previews_html_and_text_with_sample_links(
    client, editor, issue, django_assert_num_queries
):
    client.force_login(editor)
    # session, user, permissions (2), issue; articles and masthead to render it; preflight
    # reads the articles' bodies (their links and cross-references) and renders on its own
    # (articles, masthead)
    with django_assert_num_queries(10):
        response = client.get(url("preview", issue))

    assert response.status_code == 200
    page = response.content.decode()
    assert "The Monitor, Volume 6, Issue 11" in page
    assert f"{settings.SITE_URL}/unsubscribe/sample/" in page  # the header, and the text part
    text = response.context["text"]
    assert "Headline 1" in text and f"{settings.SITE_URL}/unsubscribe/sample/" in text
    assert "<iframe" in page and 'sandbox src="' + url("preview_html", issue) in page
    assert 'value="Send a test to me (editor@example.org)"' in page
    assert page.count('alt="Pass"') == len(preflight.preflight(issue))


def test_preview_html_is_the_subscriber_html_and_may_be_framed_by_the_admin_only(
    client, analyst, issue, django_assert_num_queries
):
    client.force_login(analyst)
    with django_assert_num_queries(7):
        response = client.get(url("preview_html", issue))

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "sandbox" in response["Content-Security-Policy"]
    body = response.content.decode()
    assert "<strong>confused</strong>" in body
    assert f'href="{settings.SITE_URL}/unsubscribe/sample/"' in body
    assert "@@MONITOR_" not in body


def test_analyst_sees_preview_and_preflight_but_no_sending_action(client, analyst, issue):
    client.force_login(analyst)

    preview = client.get(url("preview", issue)).content.decode()
    change = client.get(url("change", issue)).content.decode()

    assert "Send a test to me" not in preview
    assert 'alt="Pass"' in change and "Preflight checks" in change
    for action in ("Send a test to me", "Send now", 'value="Schedule"', "Pause", "Cancel the send"):
        assert action not in change


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("send", {}),
        ("test", {}),
        ("schedule", {"at": "2099-01-01T10:00"}),
        ("unschedule", {}),
        ("pause", {}),
        ("resume", {}),
        ("cancel", {"note": "stop"}),
    ],
)
def test_analyst_is_refused_every_sending_action(
    client, analyst, issue, make_subscribers, smtp_settings, name, data
):
    make_subscribers(2)
    client.force_login(analyst)

    response = client.post(url(name, issue), data)

    assert response.status_code == 403
    assert status_of(issue) == Issue.Status.APPROVED
    assert not SendJob.objects.exists() and not Delivery.objects.exists()
    assert smtp_settings.messages == []


def test_analyst_is_refused_the_send_confirmation_page(client, analyst, issue):
    client.force_login(analyst)
    assert client.get(url("send", issue)).status_code == 403


def test_editor_change_form_offers_the_sending_actions(
    client, editor, issue, django_assert_num_queries
):
    client.force_login(editor)
    ContentType.objects.clear_cache()  # the same count whatever ran before
    # the editorial change form's 9 (with its content type; the send job comes with the
    # issue) and preflight's 3
    with django_assert_num_queries(12):
        page = client.get(url("change", issue)).content.decode()

    assert "Send a test to me (editor@example.org)" in page
    assert url("send", issue) in page
    assert 'value="Schedule"' in page
    assert 'alt="Fail"' not in page


def test_a_draft_change_form_costs_no_query_for_sending(client, editor, django_assert_num_queries):
    draft = IssueFactory(status=Issue.Status.DRAFT)
    client.force_login(editor)
    ContentType.objects.clear_cache()

    # the editorial change form's own: session, user, issue (its send job joined),
    # permissions (2), events, articles, content type, and the two select boxes
    with django_assert_num_queries(10):
        page = client.get(url("change", draft)).content.decode()

    assert url("preview", draft) in page
    assert "Preflight checks" not in page and "Send now" not in page


def test_a_link_to_a_missing_archive_page_fails_preflight(client, editor):
    sent = IssueFactory(number=10, status=Issue.Status.SENT)
    issue = IssueFactory(number=11, status=Issue.Status.APPROVED)
    Article.objects.create(
        issue=issue,
        position=9,
        headline="Cross-references",
        body=(
            f"See [the last issue]({settings.SITE_URL}/monitor/6/10/), "
            f"[a lost one]({settings.SITE_URL}/monitor/6/5/) and [this one](/monitor/6/11/)."
        ),
    )
    client.force_login(editor)

    checks = {c.name: c for c in preflight.preflight(issue)}
    page = client.get(url("send", issue)).content.decode()

    assert not checks["archive_links"].ok
    assert "/monitor/6/5/" in checks["archive_links"].detail
    assert "/monitor/6/10/" not in checks["archive_links"].detail  # sent: it exists
    assert "/monitor/6/11/" not in checks["archive_links"].detail  # itself: it will exist
    assert 'alt="Fail"' in page and "Yes, send" not in page
    response = client.post(url("send", issue))
    assert "Preflight failed" in " ".join(texts(response))
    assert status_of(issue) == Issue.Status.APPROVED
    assert sent.status == Issue.Status.SENT


# --- test send ------------------------------------------------------------------------


def test_editor_sends_a_test_to_themselves_over_smtp(client, editor, issue, smtp_settings):
    client.force_login(editor)

    response = client.post(url("test", issue), {"next": "preview"})

    assert response.status_code == 302 and response["Location"] == url("preview", issue)
    assert "A test copy went to editor@example.org." in texts(response)
    [(rcpt, raw)] = smtp_settings.messages
    assert rcpt == "editor@example.org"
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"].startswith("[TEST] The Monitor, Volume 6, Issue 11")
    assert not Delivery.objects.exists()
    assert status_of(issue) == Issue.Status.APPROVED


def test_test_send_without_an_address_says_so_and_sends_nothing(client, issue, smtp_settings):
    client.force_login(member_of("Editors", "noaddress", email=""))

    response = client.post(url("test", issue))

    assert "Your account has no email address: add one first." in texts(response)
    assert smtp_settings.messages == []


def test_test_send_refused_by_the_server_is_reported(client, editor, issue, smtp_settings):
    smtp_settings.reject["editor@example.org"] = "550 No such user"
    client.force_login(editor)

    response = client.post(url("test", issue))

    assert any("was not sent" in t and "550" in t for t in texts(response))


# --- send now -------------------------------------------------------------------------


def test_confirmation_page_states_the_audience_size(
    client, editor, issue, make_subscribers, django_assert_num_queries
):
    make_subscribers(4)
    make_subscribers(2, prefix="gone", status=Subscription.Status.UNSUBSCRIBED)
    Suppression.objects.create(email="reader0@example.org", reason="bounced")
    client.force_login(editor)

    # session, user, permissions (2), issue, preflight (3), audience
    with django_assert_num_queries(9):
        response = client.get(url("send", issue))

    assert response.context["audience"] == 3
    assert "now to <strong>3</strong> subscribers" in response.content.decode()
    assert status_of(issue) == Issue.Status.APPROVED  # a GET sends nothing
    assert not Delivery.objects.exists()


def test_editor_confirms_and_the_send_starts(client, editor, issue, make_subscribers):
    make_subscribers(3)
    client.force_login(editor)

    response = client.post(url("send", issue))

    assert response.status_code == 302 and response["Location"] == url("change", issue)
    assert "Sending The Monitor, Volume 6, Issue 11 to 3 subscribers." in texts(response)
    assert status_of(issue) == Issue.Status.SENDING
    job = SendJob.objects.get(issue=issue)
    assert job.started_by == editor and job.audience == 3
    assert Delivery.objects.filter(issue=issue, status="queued").count() == 3
    again = client.post(url("send", issue))
    assert "only an approved or scheduled issue can be sent" in " ".join(texts(again))
    assert Delivery.objects.count() == 3


def test_a_draft_cannot_be_sent_from_the_admin(client, editor):
    draft = IssueFactory(status=Issue.Status.DRAFT)
    client.force_login(editor)

    response = client.post(url("send", draft))

    assert "only an approved or scheduled issue can be sent" in " ".join(texts(response))
    assert status_of(draft) == Issue.Status.DRAFT


def test_send_only_answers_get_and_post(client, editor, issue):
    client.force_login(editor)
    assert client.post(url("pause", issue)).status_code == 302
    assert client.get(url("pause", issue)).status_code == 405


# --- schedule ------------------------------------------------------------------------


def test_editor_schedules_then_unschedules(client, editor, issue):
    client.force_login(editor)
    at = timezone.localtime() + timedelta(days=1)

    response = client.post(url("schedule", issue), {"at": at.strftime("%Y-%m-%dT%H:%M")})

    issue.refresh_from_db()
    assert issue.status == Issue.Status.SCHEDULED
    assert issue.scheduled_at == at.replace(second=0, microsecond=0)
    assert any("will be sent at" in t for t in texts(response))
    page = client.get(url("change", issue)).content.decode()
    assert 'value="Unschedule"' in page and "Scheduled for" in page

    client.post(url("unschedule", issue))

    issue.refresh_from_db()
    assert issue.status == Issue.Status.APPROVED and issue.scheduled_at is None


@pytest.mark.parametrize("value", ["", "tomorrow", "2001-01-01T10:00"])
def test_a_bad_or_past_schedule_time_changes_nothing(client, editor, issue, value):
    client.force_login(editor)

    response = client.post(url("schedule", issue), {"at": value})

    assert response.status_code == 302
    assert texts(response) and "Schedule:" in texts(response)[0]
    assert status_of(issue) == Issue.Status.APPROVED


def test_a_due_scheduled_issue_is_started_by_the_sweep(client, editor, issue, make_subscribers):
    make_subscribers(2)
    client.force_login(editor)
    at = timezone.now() + timedelta(minutes=5)
    client.post(url("schedule", issue), {"at": at.strftime("%Y-%m-%dT%H:%M:%S")})

    assert sweep.sweep()["started"] == 0
    Issue.objects.filter(pk=issue.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    assert sweep.sweep()["started"] == 1

    assert status_of(issue) == Issue.Status.SENDING
    assert Delivery.objects.filter(issue=issue).count() == 2


# --- pause, resume, cancel ------------------------------------------------------------


def run_chunks(issue: Issue) -> None:
    ids = list(
        Delivery.objects.filter(issue=issue, status="queued")
        .order_by("id")
        .values_list("id", flat=True)
    )
    if ids:
        chunk.chunk_send(issue_id=issue.pk, lo=ids[0], hi=ids[-1])


def test_pause_stops_further_sends_and_resume_sends_the_rest_once(
    client, editor, issue, make_subscribers, smtp_settings, django_assert_num_queries
):
    make_subscribers(5)
    client.force_login(editor)
    client.post(url("send", issue))

    response = client.post(url("pause", issue))
    assert any("paused" in t for t in texts(response))
    # while sending: no preflight, one aggregate for the progress bar
    ContentType.objects.clear_cache()
    with django_assert_num_queries(10):
        page = client.get(url("change", issue)).content.decode()
    assert 'value="Resume"' in page and 'value="Pause"' not in page

    run_chunks(issue)  # a chunk task that was already in the queue
    assert smtp_settings.messages == []
    assert SendJob.objects.get(issue=issue).state == SendJob.State.PAUSED

    client.post(url("resume", issue))
    run_chunks(issue)
    run_chunks(issue)  # the same range again: nothing is left to claim

    assert sorted(smtp_settings.recipients()) == [f"reader{n}@example.org" for n in range(5)]
    assert status_of(issue) == Issue.Status.SENT


def test_cancel_drops_what_is_queued(client, editor, issue, make_subscribers, smtp_settings):
    make_subscribers(4)
    client.force_login(editor)
    client.post(url("send", issue))

    refused = client.post(url("cancel", issue), {"note": ""})
    assert "the note is required" in " ".join(texts(refused))
    assert status_of(issue) == Issue.Status.SENDING

    response = client.post(url("cancel", issue), {"note": "Wrong date in the headline"})

    assert any("4 queued message(s) will not be sent" in t for t in texts(response))
    run_chunks(issue)
    assert smtp_settings.messages == []
    assert status_of(issue) == Issue.Status.CANCELLED
    assert set(Delivery.objects.values_list("status", "last_error")) == {
        ("cancelled", "Cancelled before sending.")
    }
    event = issue.events.get(to_status=Issue.Status.CANCELLED)
    assert event.by == editor and event.note == "Wrong date in the headline"


def test_pause_and_resume_when_not_sending_say_so(client, editor, issue):
    client.force_login(editor)
    assert "nothing to pause" in " ".join(texts(client.post(url("pause", issue))))
    assert "nothing to resume" in " ".join(texts(client.post(url("resume", issue))))
    assert "nothing to cancel" in " ".join(texts(client.post(url("cancel", issue), {"note": "x"})))
    assert status_of(issue) == Issue.Status.APPROVED


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not cache_is_redis(), reason="the cache must answer while the broker does not")
def test_an_editor_sending_while_the_broker_is_down_is_told_the_send_is_on(issue, make_subscribers):
    """Behind the button, a site of its own whose broker does not answer: the send's rows
    are written and the editor is told what happens next, not shown an error page."""
    make_subscribers(5)
    member_of("Editors", "editor")
    cache_url = settings.CACHES["default"]["LOCATION"]
    with running_site(CELERY_BROKER_URL=CLOSED_BROKER, MONITOR_CACHE_URL=cache_url) as site:
        browser = requests.Session()
        login = form_post(
            browser, site.base + "/admin/login/", {"username": "editor", "password": "pw"}
        )
        assert login.status_code == 302, site.log
        sent = form_post(browser, site.base + url("send", issue), {})
        assert sent.status_code == 302, sent.text[:2000]
        page = browser.get(site.base + sent.headers["Location"], timeout=30)

    assert "the send is on and its messages are queued" in page.text
    assert "(CELERY_BROKER_URL) does not answer" in page.text
    assert SendJob.objects.get(issue=issue).state == SendJob.State.RUNNING
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.QUEUED).count() == 5
