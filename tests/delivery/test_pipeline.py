"""The send pipeline, service by service, without a worker: fan-out, claims, outcomes,
retries, completion. Tasks enqueued here are not run; task bodies are called directly."""

from __future__ import annotations

import copy
import threading
from datetime import timedelta
from unittest.mock import ANY

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery import chunk, dispatch, feedback, progress, services, sweep, transports
from delivery.models import Delivery, MessageId, SendJob
from delivery.transports import esp
from issues.models import Issue, Publication
from subscriptions.models import Subscription, Suppression
from tests.factories import IssueFactory
from tests.helpers import api_error, chunks, run_all

pytestmark = pytest.mark.django_db


def test_start_snapshots_active_unsuppressed_subscriptions_only(issue, make_subscribers):
    make_subscribers(5)
    make_subscribers(2, prefix="pending", status=Subscription.Status.PENDING)
    make_subscribers(2, prefix="gone", status=Subscription.Status.UNSUBSCRIBED)
    Suppression.objects.create(email="reader0@example.org", reason="bounced")
    Suppression.objects.create(
        email="reader1@example.org", reason="bounced", lifted_at=timezone.now()
    )

    result = services.send_start(issue=issue)

    assert result.created
    assert result.job.audience == 4
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENDING
    emails = set(Delivery.objects.filter(issue=issue).values_list("email", flat=True))
    assert emails == {
        "reader1@example.org",
        "reader2@example.org",
        "reader3@example.org",
        "reader4@example.org",
    }
    assert issue.events.filter(to_status=Issue.Status.SENDING).count() == 1


def test_second_start_changes_nothing_and_says_so(issue, make_subscribers):
    make_subscribers(3)
    services.send_start(issue=issue)
    again = services.send_start(issue=issue)

    assert not again.created
    assert "already sending" in again.message
    assert Delivery.objects.filter(issue=issue).count() == 3
    assert SendJob.objects.count() == 1


def test_a_draft_cannot_be_sent(make_subscribers):
    draft = IssueFactory(status=Issue.Status.DRAFT)
    make_subscribers(2)
    with pytest.raises(services.SendError):
        services.send_start(issue=draft)
    assert not Delivery.objects.exists()
    draft.refresh_from_db()
    assert draft.status == Issue.Status.DRAFT


def test_preflight_refuses_an_issue_without_articles():
    empty = IssueFactory(articles=0, status=Issue.Status.APPROVED)
    with pytest.raises(services.SendError, match="no article"):
        services.send_start(issue=empty)
    assert not SendJob.objects.exists()


def test_whole_send_delivers_each_subscriber_once_and_marks_the_issue_sent(
    issue, make_subscribers, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_subscribers(1200)
    services.send_start(issue=issue)
    assert len(chunks(issue)) == 3

    run_all(issue)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        f"reader{n}@example.org" for n in range(1200)
    )
    assert progress.progress(issue)["sent"] == 1200
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENT
    assert issue.sent_at is not None
    assert SendJob.objects.get(issue=issue).state == SendJob.State.DONE


def test_a_chunk_claimed_twice_is_sent_once(issue, make_subscribers, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_subscribers(10)
    services.send_start(issue=issue)
    ((lo, hi),) = chunks(issue)

    first = chunk.chunk_send(issue_id=issue.pk, lo=lo, hi=hi)
    second = chunk.chunk_send(issue_id=issue.pk, lo=lo, hi=hi)

    assert (first.claimed, second.claimed) == (10, 0)
    assert len(mail.outbox) == 10


def test_a_slow_chunk_renews_its_lease_so_its_rows_are_never_taken_back(
    issue, make_subscribers, settings, monkeypatch
):
    """400 messages, a quarter of a second each: 100 s, beyond the 60 s lease."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DELIVERY_LEASE_SECONDS = 60
    make_subscribers(400)
    services.send_start(issue=issue)
    ((lo, hi),) = chunks(issue)
    send = transports.BackendTransport.send
    record = chunk.outcomes_record
    leases_left = []

    with time_machine.travel(timezone.now(), tick=False) as clock:

        def slow_send(self, rendered, part):
            clock.shift(0.25 * len(part))
            return send(self, rendered, part)

        def recording(issue_id, mine, outcome, *args, **kwargs):
            held = Delivery.objects.filter(issue=issue, status="sending")
            leases_left.append(min((r.lease_until - timezone.now()).total_seconds() for r in held))
            return record(issue_id, mine, outcome, *args, **kwargs)

        monkeypatch.setattr(transports.BackendTransport, "send", slow_send)
        monkeypatch.setattr(chunk, "outcomes_record", recording)
        result = chunk.chunk_send(issue_id=issue.pk, lo=lo, hi=hi)

    assert result.sent == 400
    assert len(leases_left) >= 4  # at least every 100 messages
    assert min(leases_left) > 0, leases_left
    assert sweep.release_expired_leases() == 0


def test_someone_who_unsubscribes_during_the_send_gets_nothing(issue, make_subscribers, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    subs = make_subscribers(3)
    services.send_start(issue=issue)
    Subscription.objects.filter(pk=subs[0].pk).update(status=Subscription.Status.UNSUBSCRIBED)
    Suppression.objects.create(email=subs[1].subscriber.email, reason="complained")

    run_all(issue)

    assert [m.to[0] for m in mail.outbox] == [subs[2].subscriber.email]
    assert progress.progress(issue)["skipped"] == 2
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENT


def esp_settings(settings) -> None:
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"


def test_esp_batch_sends_one_call_per_chunk_with_per_recipient_merge_data(
    issue, make_subscribers, settings
):
    esp_settings(settings)
    make_subscribers(3)
    make_subscribers(2, prefix="plain", format=Subscription.Format.TEXT)
    services.send_start(issue=issue)

    run_all(issue)

    assert len(mail.outbox) == 2  # one batch per format
    html_batch = next(m for m in mail.outbox if m.alternatives)
    params = html_batch.anymail_test_params
    assert params["is_batch_send"]
    assert sorted(params["merge_data"]) == sorted(f"reader{n}@example.org" for n in range(3))
    data = params["merge_data"]["reader0@example.org"]
    assert "/unsubscribe/" in data["unsubscribe_url"]
    assert "{{unsubscribe_url}}" in html_batch.alternatives[0][0]
    headers = params["merge_headers"]["reader0@example.org"]
    assert headers["List-Unsubscribe"] == f"<{data['unsubscribe_url']}>"
    assert headers["Message-ID"].startswith(f"<issue.{issue.pk}.")
    assert params["extra_headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert progress.progress(issue)["sent"] == 5
    # Each call's id is on its rows and indexed once, not per row; with the address
    # in an ESP's event it still names one delivery.
    deliveries = list(Delivery.objects.filter(issue=issue))
    assert len({d.esp_message_id for d in deliveries}) == 2
    assert MessageId.objects.filter(issue=issue, delivery=None).count() == 2
    for delivery in deliveries:
        found = feedback.delivery_find(
            metadata={}, message_id=delivery.esp_message_id, email=delivery.email, at=timezone.now()
        )
        assert found == delivery


def _recorded(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if q["sql"].startswith('UPDATE "delivery_delivery"') and '"sent_at"' in q["sql"]
    ]


def test_an_esp_is_given_names_only_where_the_templates_use_them(make_subscribers, settings):
    esp_settings(settings)
    make_subscribers(2)
    plain = IssueFactory(number=11, status=Issue.Status.APPROVED)
    services.send_start(issue=plain)
    run_all(plain)
    assert mail.outbox[-1].anymail_test_params["merge_data"]["reader1@example.org"] == {
        "email": "reader1@example.org",
        "unsubscribe_url": ANY,
        "preferences_url": ANY,
    }

    greeting = "Dear {{ name }},\n\n{{ unsubscribe_url }}\n{{ preferences_url }}\n"
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["APP_DIRS"] = False
    templates[0]["OPTIONS"]["loaders"] = [
        ("django.template.loaders.locmem.Loader", {"emails/issue.txt": greeting}),
        "django.template.loaders.filesystem.Loader",
        "django.template.loaders.app_directories.Loader",
    ]
    settings.TEMPLATES = templates
    greeted = IssueFactory(number=12, status=Issue.Status.APPROVED)
    services.send_start(issue=greeted)
    run_all(greeted)
    message = mail.outbox[-1]
    assert message.anymail_test_params["merge_data"]["reader1@example.org"]["name"] == "Reader 1"
    assert message.body.startswith("Dear {{name}},")


def test_each_batch_call_of_a_chunk_is_recorded_by_its_id_run(
    issue, make_subscribers, settings, monkeypatch
):
    esp_settings(settings)
    monkeypatch.setattr(esp, "ESP_BATCH_LIMIT", 3)
    make_subscribers(7)
    services.send_start(issue=issue)

    with CaptureQueriesContext(connection) as queries:
        run_all(issue)

    assert len(mail.outbox) == 3
    recorded = _recorded(queries)
    assert len(recorded) == 3
    assert not any(" IN (" in sql for sql in recorded)
    # the calls' message ids indexed before their rows, with no transaction around them
    sqls = [q["sql"] for q in queries]
    for update in recorded:
        before = sqls[: sqls.index(update)]
        assert any(sql.startswith('INSERT INTO "delivery_messageid"') for sql in before)
    steps = sqls[sqls.index(recorded[0]) - 1 : sqls.index(recorded[-1]) + 1]
    assert not any(sql.startswith(("SAVEPOINT", "BEGIN")) for sql in steps)
    ids = list(Delivery.objects.filter(issue=issue).order_by("id").values_list("esp_message_id"))
    assert ids[0] == ids[1] == ids[2] != ids[3] == ids[4] == ids[5] != ids[6]
    assert progress.progress(issue)["sent"] == 7


def test_a_batch_call_whose_rows_are_not_a_run_is_recorded_by_its_ids(
    issue, make_subscribers, settings
):
    esp_settings(settings)
    make_subscribers(2, prefix="a")
    make_subscribers(2, prefix="plain", format=Subscription.Format.TEXT)
    make_subscribers(2, prefix="b")
    services.send_start(issue=issue)

    with CaptureQueriesContext(connection) as queries:
        run_all(issue)

    # the HTML call's rows (1, 2, 5, 6) by their ids; the text call's (3, 4) are a run
    recorded = _recorded(queries)
    assert [" IN (" in sql for sql in recorded] == [True, False]
    calls = {m.alternatives != []: str(m.anymail_status.message_id) for m in mail.outbox}
    for delivery in Delivery.objects.filter(issue=issue).select_related("subscription"):
        html = delivery.subscription.format == Subscription.Format.HTML
        assert delivery.esp_message_id == calls[html]
        assert delivery.status == Delivery.Status.SENT


@pytest.fixture
def failing_esp(monkeypatch):
    """Makes the anymail test backend answer each call with the next of `responses`."""
    from anymail.backends.test import EmailBackend

    responses: list[object] = []
    original = EmailBackend.send_messages

    def send_messages(self, messages):
        if responses:
            answer = responses.pop(0)
            for m in messages:
                m.anymail_test_response = answer
        return original(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_messages)
    return responses


def test_transient_esp_errors_are_retried_with_backoff_then_succeed(
    issue, make_subscribers, settings, failing_esp
):
    esp_settings(settings)
    make_subscribers(4)
    failing_esp.extend([api_error(429), api_error(500)])
    services.send_start(issue=issue)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        run_all(issue)  # 429
        row = Delivery.objects.filter(issue=issue).first()
        assert row.status == "queued" and row.attempts == 1 and "429" in row.last_error
        assert row.next_attempt_at > timezone.now() + timedelta(seconds=20)
        assert chunk.chunk_send(issue_id=issue.pk, lo=0, hi=10**9).claimed == 0  # not yet due

        clock.shift(timedelta(seconds=60))
        run_all(issue)  # 500
        row.refresh_from_db()
        assert row.attempts == 2 and "500" in row.last_error
        assert row.next_attempt_at - timezone.now() > timedelta(seconds=40)  # doubled

        clock.shift(timedelta(seconds=120))
        run_all(issue)  # success

    assert progress.progress(issue)["sent"] == 4
    row.refresh_from_db()  # sent, it keeps its attempts and the last error it met
    assert (row.status, row.attempts) == ("sent", 3) and "500" in row.last_error
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENT


def test_a_permanent_reject_is_recorded_as_failed_with_the_reason(
    issue, make_subscribers, settings, failing_esp
):
    esp_settings(settings)
    make_subscribers(2)
    failing_esp.append(api_error(422))
    services.send_start(issue=issue)

    run_all(issue)

    assert progress.progress(issue)["failed"] == 2
    assert "422" in Delivery.objects.first().last_error
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENT  # every row is final


def test_rows_give_up_after_the_attempt_limit(issue, make_subscribers, settings, failing_esp):
    esp_settings(settings)
    settings.DELIVERY_MAX_ATTEMPTS = 3
    make_subscribers(1)
    failing_esp.extend([api_error(503)] * 5)
    services.send_start(issue=issue)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(3):
            run_all(issue)
            clock.shift(timedelta(hours=1))

    row = Delivery.objects.get()
    assert row.status == "failed"
    assert row.last_error.startswith("Gave up after 3 attempts")


def test_expired_leases_go_back_to_the_queue(issue, make_subscribers, settings):
    make_subscribers(3)
    services.send_start(issue=issue)
    Delivery.objects.update(
        status="sending", lease_until=timezone.now() - timedelta(seconds=1), attempts=1
    )

    assert sweep.release_expired_leases() == 3
    assert progress.progress(issue)["queued"] == 3


def test_pause_stops_chunks_and_resume_continues_without_duplicates(
    issue, make_subscribers, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_subscribers(1000)
    services.send_start(issue=issue)
    (lo1, hi1), (lo2, hi2) = chunks(issue)
    chunk.chunk_send(issue_id=issue.pk, lo=lo1, hi=hi1)

    assert services.send_pause(issue=issue)
    assert chunk.chunk_send(issue_id=issue.pk, lo=lo2, hi=hi2).claimed == 0
    assert len(mail.outbox) == 500

    assert services.send_resume(issue=issue)
    run_all(issue)
    assert len(mail.outbox) == 1000
    assert len({m.to[0] for m in mail.outbox}) == 1000


def test_cancel_drops_queued_rows(issue, make_subscribers):
    make_subscribers(5)
    services.send_start(issue=issue)

    assert services.send_cancel(issue=issue) == 5
    issue.refresh_from_db()
    assert issue.status == Issue.Status.CANCELLED
    counts = progress.progress(issue)
    assert (counts["cancelled"], counts["failed"]) == (5, 0)


def test_sweep_starts_due_scheduled_issues(make_subscribers):
    scheduled = IssueFactory(status=Issue.Status.SCHEDULED)
    Issue.objects.filter(pk=scheduled.pk).update(scheduled_at=timezone.now() - timedelta(minutes=1))
    later = IssueFactory(number=12, status=Issue.Status.SCHEDULED)
    Issue.objects.filter(pk=later.pk).update(scheduled_at=timezone.now() + timedelta(hours=1))
    make_subscribers(2)

    assert sweep.sweep()["started"] == 1
    scheduled.refresh_from_db()
    later.refresh_from_db()
    assert scheduled.status == Issue.Status.SENDING
    assert later.status == Issue.Status.SCHEDULED


def test_an_empty_audience_finishes_at_once(issue):
    services.send_start(issue=issue)
    sweep.sweep()
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENT


def test_start_records_the_id_range_and_dispatch_walks_it_once(issue, make_subscribers, settings):
    settings.DELIVERY_CHUNK_SIZE = 4
    settings.DELIVERY_WINDOW = 2
    make_subscribers(10)
    services.send_start(issue=issue)
    job = SendJob.objects.get(issue=issue)
    ids = sorted(Delivery.objects.filter(issue=issue).values_list("id", flat=True))
    assert job.first_id <= ids[0] and job.last_id >= ids[-1]

    job.cursor = job.first_id - 1
    job.save()
    assert dispatch.dispatch(issue_id=issue.pk) == 2  # the window: 2 chunks of 4
    assert SendJob.objects.get(issue=issue).cursor == ids[7]
    assert dispatch.dispatch(issue_id=issue.pk) == 1  # the last 2 rows
    assert dispatch.dispatch(issue_id=issue.pk) == 0  # nothing new, nothing due again
    assert not Delivery.objects.exclude(enqueued_at=None).exists()  # no row was written


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL planner statistics")
def test_start_gives_the_planner_statistics_of_the_columns_chunks_filter_on(
    issue, make_subscribers, django_capture_on_commit_callbacks
):
    make_subscribers(30)
    with django_capture_on_commit_callbacks(execute=True):
        services.send_start(issue=issue)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, most_common_vals::text FROM pg_stats WHERE tablename = %s",
            [Delivery._meta.db_table],
        )
        stats = dict(cursor.fetchall())
    assert {"id", "issue_id", "status", "claim", "next_attempt_at"} <= stats.keys()
    assert stats["issue_id"] == f"{{{issue.pk}}}"
    assert "email" not in stats


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL row locks")
@pytest.mark.django_db(transaction=True)
def test_handing_out_chunks_locks_the_job_alone(issue, make_subscribers):
    """An editor saving the publication or the issue mid-send stalls no worker."""
    make_subscribers(10)
    services.send_start(issue=issue)
    dispatch.rewind(issue.pk)  # hand the rows out again below
    locked, done = threading.Event(), threading.Event()

    def hold_the_publication_and_the_issue() -> None:
        try:
            with transaction.atomic():
                Publication.objects.select_for_update().get(pk=issue.publication_id)
                Issue.objects.select_for_update().get(pk=issue.pk)
                locked.set()
                done.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_publication_and_the_issue)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            assert dispatch.dispatch(issue_id=issue.pk) == 1
    finally:
        done.set()
        holder.join(timeout=30)


def test_a_claim_takes_at_most_a_chunk_of_a_wider_range(issue, make_subscribers, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DELIVERY_CHUNK_SIZE = 4
    make_subscribers(10)
    services.send_start(issue=issue)
    ids = sorted(Delivery.objects.values_list("id", flat=True))

    result = chunk.ChunkResult()
    assert chunk._send_claimed(issue, ids[0], ids[-1], 4, result) == 4
    assert sorted(m.to[0] for m in mail.outbox) == [f"reader{n}@example.org" for n in range(4)]
    assert chunk.chunk_send(issue_id=issue.pk, lo=ids[0], hi=ids[-1]).claimed == 6
    assert len(mail.outbox) == 10


def test_rows_released_from_a_lost_worker_are_handed_out_again(issue, make_subscribers, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_subscribers(3)
    services.send_start(issue=issue)
    assert dispatch.dispatch(issue_id=issue.pk) == 1  # (on commit, outside a test)
    Delivery.objects.update(
        status="sending", lease_until=timezone.now() - timedelta(seconds=1), attempts=1
    )

    assert sweep.release_expired_leases() == 3
    assert dispatch.dispatch(issue_id=issue.pk) == 1
    assert dispatch.dispatch(issue_id=issue.pk) == 0  # marked: not handed out twice
    run_all(issue)
    assert len(mail.outbox) == 3
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENT


def test_sweep_hands_out_again_what_a_stalled_send_lost(issue, make_subscribers, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_subscribers(3)
    services.send_start(issue=issue)
    assert dispatch.dispatch(issue_id=issue.pk) == 1  # a task the broker then lost
    assert sweep.sweep()["dispatched"] == 0  # handed out a moment ago: busy
    SendJob.objects.update(handed_out_at=timezone.now() - timedelta(minutes=5))

    assert sweep.sweep()["dispatched"] == 1
    run_all(issue)
    assert len(mail.outbox) == 3
