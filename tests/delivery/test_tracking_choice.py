"""Open and click tracking is each publication's choice, off by default: the choice goes
to the ESP with every message (anymail's track_opens and track_clicks), and the report
says when a figure is unavailable because the send did not track it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from delivery import reports
from delivery.models import SendJob
from delivery.rendering import rendered_issue
from delivery.transports import AnymailTransport
from issues.models import Issue
from tests.factories import IssueFactory
from tests.helpers import member_of, send_in_process, url


class Postmark(BaseHTTPRequestHandler):
    """Postmark's /email endpoint as far as anymail cares: keeps each JSON body."""

    protocol_version = "HTTP/1.1"
    received: list[dict]

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append(body)
        answer = json.dumps(
            {"To": body["To"], "MessageID": f"id-{len(self.received)}", "ErrorCode": 0}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def postmark(settings) -> Iterator[list[dict]]:
    received: list[dict] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Postmark,), {"received": received}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "token",
        "POSTMARK_API_URL": f"http://127.0.0.1:{server.server_port}/",
    }
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def test_tracking_is_off_by_default_and_the_esp_is_told_so(issue, make_subscribers, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    make_subscribers(2)
    assert not issue.publication.track_opens and not issue.publication.track_clicks

    send_in_process(issue)

    (batch,) = mail.outbox
    assert batch.anymail_test_params["track_opens"] is False
    assert batch.anymail_test_params["track_clicks"] is False


def test_a_publication_that_tracks_opens_asks_the_esp_for_them(
    issue, publication, make_subscribers, settings
):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    publication.track_opens = True
    publication.save()
    make_subscribers(2)

    send_in_process(issue)

    (batch,) = mail.outbox
    assert batch.anymail_test_params["track_opens"] is True
    assert batch.anymail_test_params["track_clicks"] is False
    assert SendJob.objects.get(issue=issue).track_opens


def test_the_choice_reaches_the_esps_api(issue, publication, make_subscribers, postmark):
    make_subscribers(1)
    send_in_process(issue)
    publication.track_clicks = True
    publication.save()
    send_in_process(
        IssueFactory(volume__publication=publication, number=12, status=Issue.Status.APPROVED)
    )

    untracked, clicks = postmark
    assert (untracked["TrackOpens"], untracked["TrackLinks"]) == (False, "None")
    assert (clicks["TrackOpens"], clicks["TrackLinks"]) == (False, "HtmlAndText")


def _recipients(issue):
    from delivery.rendering import Recipient

    yield (
        0,
        Recipient(
            delivery_key=f"{issue.pk}.0",
            email="reader0@example.org",
            name="",
            unsubscribe_url="https://example.org/unsubscribe/x/",
            preferences_url="https://example.org/preferences/x/",
        ),
    )


def test_an_esp_tracking_only_from_its_own_settings_is_sent_no_option(issue, settings, monkeypatch):
    settings.EMAIL_BACKEND = "anymail.backends.brevo.EmailBackend"
    settings.ANYMAIL = {"BREVO_API_KEY": "key"}
    payloads = []

    def post_to_esp(backend, payload, message):
        payloads.append(payload)
        raise OSError("the stand-in takes nothing")

    transport = AnymailTransport("brevo")
    monkeypatch.setattr(type(transport.backend), "post_to_esp", post_to_esp)
    with transport:
        outcome = transport.send(rendered_issue(issue), list(_recipients(issue)))

    # anymail refuses track_opens for Brevo: had it been set, no payload would be built
    assert len(payloads) == 1
    assert outcome.retry == {0: "OSError: the stand-in takes nothing"}


def test_the_report_says_opens_and_clicks_are_unavailable_when_not_tracked(
    issue, make_subscribers, settings, client
):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    make_subscribers(1)
    send_in_process(issue)

    report = reports.issue_report(issue=issue, job=SendJob.objects.get(issue=issue))
    assert report.untracked == {"opened", "clicked"}
    client.force_login(member_of("Editors", "editor"))
    page = client.get(url("report", issue)).content.decode()

    assert '<td data-kind="opened">n/a</td>' in page
    assert "Not available: open tracking was off for this send." in page
    assert "Not available: click tracking was off for this send." in page


def test_a_tracked_send_reports_its_figures_even_when_nothing_was_opened(
    issue, publication, make_subscribers, settings
):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    publication.track_opens = publication.track_clicks = True
    publication.save()
    make_subscribers(1)
    send_in_process(issue)

    report = reports.issue_report(issue=issue, job=SendJob.objects.get(issue=issue))

    assert report.untracked == frozenset()
    assert report.events["opened"] == (0, 0)
