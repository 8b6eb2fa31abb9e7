"""Opens and clicks by machines (Apple Mail Privacy Protection's proxy, security
scanners) are counted apart from readers', as each ESP flags them in its webhook (or
its user agent shows), through django-anymail's real webhook views."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from base64 import b64encode
from datetime import timedelta

import pytest
from anymail.signals import AnymailTrackingEvent
from django.utils import timezone

from delivery import feedback, reports
from delivery.models import Delivery, DeliveryEvent
from issues.models import Issue
from tests.factories import IssueFactory

SECRET = "monitor-esp:correct-horse-battery"
SIGNING_KEY = "mailgun-webhook-signing-key"
HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.4"


@pytest.fixture
def mailed(settings, publication, make_subscribers) -> Delivery:
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "WEBHOOK_SECRET": SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
    }
    issue = IssueFactory(volume__publication=publication, number=11, status=Issue.Status.SENT)
    (subscription,) = make_subscribers(1)
    return Delivery.objects.create(
        issue=issue,
        subscriber=subscription.subscriber,
        subscription=subscription,
        email=subscription.subscriber.email,
        status=Delivery.Status.SENT,
        sent_at=timezone.now() - timedelta(hours=1),
    )


def post(client, esp: str, body: object, **headers: str):
    auth = "Basic " + b64encode(SECRET.encode()).decode()
    response = client.post(
        f"/anymail/{esp}/tracking/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
        **headers,
    )
    assert response.status_code == 200, response.content


def mailgun(email: str, *, event: str = "opened", bot: str = "", agent: str = HUMAN) -> dict:
    token, timestamp = uuid.uuid4().hex, str(int(timezone.now().timestamp()))
    signature = hmac.new(SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {
        "signature": {"token": token, "timestamp": timestamp, "signature": signature.hexdigest()},
        "event-data": {
            "id": uuid.uuid4().hex[:22],
            "event": event,
            "timestamp": timezone.now().timestamp(),
            "recipient": email,
            "url": "https://example.org/monitor/",
            # as Mailgun's documentation shows an Apple MPP open
            "client-info": {"client-type": "unknown", "user-agent": agent, "bot": bot},
        },
    }


def sendgrid(email: str, *, machine: bool) -> list[dict]:
    return [
        {
            "email": email,
            "event": "open",
            "timestamp": int(timezone.now().timestamp()),
            "sg_event_id": uuid.uuid4().hex,
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "useragent": HUMAN,
            "ip": "255.255.255.255",
            "sg_machine_open": machine,
        }
    ]


def brevo(email: str, *, proxy: bool) -> dict:
    return {
        "event": "proxy_open" if proxy else "unique_opened",
        "email": email,
        "id": 1,
        "date": "2020-10-09 00:00:00",
        "message-id": "201798300811.5787683@relay.domain.com",
        "ts_epoch": int(timezone.now().timestamp() * 1000),
    }


def postmark(email: str, *, agent: str) -> dict:
    return {
        "RecordType": "Open",
        "FirstOpen": True,
        "Recipient": email,
        "MessageID": str(uuid.uuid4()),
        "ReceivedAt": timezone.now().isoformat(),
        "UserAgent": agent,
        "Platform": "Unknown",
    }


MACHINE_AND_HUMAN = {
    "mailgun": (lambda e: mailgun(e, bot="apple", agent="Mozilla/5.0"), lambda e: mailgun(e)),
    "sendgrid": (lambda e: sendgrid(e, machine=True), lambda e: sendgrid(e, machine=False)),
    "brevo": (lambda e: brevo(e, proxy=True), lambda e: brevo(e, proxy=False)),
    "postmark": (lambda e: postmark(e, agent="Mozilla/5.0"), lambda e: postmark(e, agent=HUMAN)),
}


@pytest.mark.parametrize("esp", sorted(MACHINE_AND_HUMAN))
def test_a_machine_open_is_counted_apart_from_the_readers_own(esp, mailed, client):
    machine, human = MACHINE_AND_HUMAN[esp]

    post(client, esp, machine(mailed.email))
    post(client, esp, human(mailed.email))

    flags = DeliveryEvent.objects.filter(delivery=mailed).order_by("pk")
    assert list(flags.values_list("kind", "machine")) == [("opened", True), ("opened", False)]
    report = reports.issue_report(issue=mailed.issue, job=None)
    assert report.events["opened"] == (1, 1)
    assert report.machine["opened"] == (1, 1)


def test_a_scanners_click_is_counted_apart_from_the_readers_own(mailed, client):
    post(client, "mailgun", mailgun(mailed.email, event="clicked", bot="generic"))
    post(client, "mailgun", mailgun(mailed.email, event="clicked"))

    report = reports.issue_report(issue=mailed.issue, job=None)
    assert report.events["clicked"] == (1, 1)
    assert report.machine["clicked"] == (1, 1)


def test_the_report_page_shows_machines_opens_on_a_line_of_their_own(mailed, client, admin_user):
    post(client, "mailgun", mailgun(mailed.email, bot="apple", agent="Mozilla/5.0"))
    client.force_login(admin_user)

    page = client.get(f"/admin/issues/issue/{mailed.issue_id}/report/").content.decode()

    assert '<td data-kind="opened">0</td>' in page
    assert '<td data-kind="opened-machine">1</td>' in page
    assert "Privacy proxies (Apple Mail) and security scanners" in page


@pytest.mark.parametrize(
    ("agent", "machine"),
    [
        ("Mozilla/5.0", True),  # Apple Mail Privacy Protection's proxy
        ("Barracuda Sentinel (EE)", True),
        ("Mozilla/5.0 (compatible; Mimecast URL scanner)", True),
        # Gmail fetches images when its reader opens the message: a person
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0"
            " (via ggpht.com GoogleImageProxy)",
            False,
        ),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
        (HUMAN, False),
        ("Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36", False),  # a phone
        (None, False),
    ],
)
def test_user_agents_of_machines(agent, machine):
    event = AnymailTrackingEvent(event_type="opened", user_agent=agent)

    assert feedback.is_machine("opened", event) is machine
    assert feedback.is_machine("delivered", event) is False
