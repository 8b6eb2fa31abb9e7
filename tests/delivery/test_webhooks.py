"""ESP tracking webhooks through django-anymail's real views, at the site's own URLs.

Payloads follow the shapes in anymail's own test suite (Postmark JSON, Mailgun signed
JSON, Amazon SES notifications inside SNS messages)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from delivery import record, services
from delivery.models import Delivery, DeliveryEvent
from issues.models import Issue
from subscriptions.models import Subscription, SubscriptionEvent, Suppression
from subscriptions.services import suppression_lift
from tests.factories import IssueFactory

SECRET = "monitor-esp:correct-horse-battery"
SIGNING_KEY = "mailgun-webhook-signing-key"
ESPS = ("postmark", "mailgun", "amazon_ses")
Kind = DeliveryEvent.Kind
Status = Subscription.Status


# --- payloads -----------------------------------------------------------------------


@dataclass
class Hook:
    """One webhook request as the ESP sends it; post it again for a replay."""

    path: str
    body: str | bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def post(self, client: Client, *, secret: str | None = SECRET):
        extra = dict(self.headers)
        if secret is not None:
            extra["HTTP_AUTHORIZATION"] = "Basic " + b64encode(secret.encode()).decode()
        return client.post(self.path, data=self.body, content_type=self.content_type, **extra)


def postmark(kind: str, *, email: str, message_id: str, at: datetime, metadata=None) -> Hook:
    common = {"MessageID": message_id, "ServerID": 23, "MessageStream": "broadcast"}
    if metadata is not None:
        common["Metadata"] = metadata
    bounce = {
        **common,
        "RecordType": "Bounce",
        "ID": uuid.uuid4().int % 10**10,
        "Email": email,
        "From": "monitor@example.org",
        "BouncedAt": at.isoformat(),
        "Subject": "The Monitor, Volume 6, Issue 11",
    }
    events = {
        "hard_bounce": {
            **bounce,
            "Type": "HardBounce",
            "TypeCode": 1,
            "Name": "Hard bounce",
            "Description": "The server was unable to deliver your message (ex: unknown user).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Inactive": True,
            "CanActivate": True,
        },
        "transient": {
            **bounce,
            "Type": "Transient",
            "TypeCode": 2,
            "Name": "Message delayed",
            "Description": "The server could not temporarily deliver your message.",
            "Details": "smtp;421 4.4.2 Connection timed out",
            "Inactive": False,
        },
        "complaint": {
            **bounce,
            "RecordType": "SpamComplaint",
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "Name": "Spam complaint",
            "Description": "",
            "Details": "Feedback loop report",
            "Inactive": True,
            "CanActivate": False,
        },
        "unsubscribe": {
            **common,
            "RecordType": "SubscriptionChange",
            "ChangedAt": at.isoformat(),
            "Recipient": email,
            "Origin": "Recipient",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
        },
        "delivered": {
            **common,
            "RecordType": "Delivery",
            "Recipient": email,
            "DeliveredAt": at.isoformat(),
            "Details": "smtp;250 2.0.0 OK",
        },
        "opened": {
            **common,
            "RecordType": "Open",
            "FirstOpen": True,
            "Recipient": email,
            "ReceivedAt": at.isoformat(),
            "UserAgent": "Mozilla/5.0",
        },
    }
    return Hook("/anymail/postmark/tracking/", json.dumps(events[kind]))


def mailgun_signed(event_data: dict, *, key: str = SIGNING_KEY) -> dict:
    token = uuid.uuid4().hex
    timestamp = str(int(timezone.now().timestamp()))
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"token": token, "timestamp": timestamp, "signature": signature},
        "event-data": event_data,
    }


def mailgun(kind: str, *, email: str, message_id: str, at: datetime, metadata=None) -> Hook:
    common = {
        "id": uuid.uuid4().hex[:22],
        "timestamp": at.timestamp(),
        "recipient": email,
        "recipient-domain": email.split("@")[1],
        "tags": ["monitor"],
        "user-variables": metadata or {},
        "message": {"headers": {"to": email, "message-id": message_id.strip("<>")}},
    }
    events = {
        "hard_bounce": {
            **common,
            "event": "failed",
            "severity": "permanent",
            "reason": "bounce",
            "log-level": "error",
            "delivery-status": {
                "code": 550,
                "description": "",
                "message": "5.1.1 The email account that you tried to reach does not exist.",
            },
        },
        "transient": {
            **common,
            "event": "failed",
            "severity": "temporary",
            "reason": "generic",
            "log-level": "warn",
            "delivery-status": {"code": 452, "message": "4.2.2 Mailbox full", "retry-seconds": 600},
        },
        "complaint": {**common, "event": "complained"},
        "unsubscribe": {**common, "event": "unsubscribed"},
        "delivered": {
            **common,
            "event": "delivered",
            "delivery-status": {"code": 250, "message": "OK"},
        },
        "opened": {**common, "event": "opened", "client-info": {"user-agent": "Mozilla/5.0"}},
    }
    return Hook("/anymail/mailgun/tracking/", json.dumps(mailgun_signed(events[kind])))


def sns(ses_event: dict, *, at: datetime) -> Hook:
    message_id = str(uuid.uuid4())
    message = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:monitor-ses-events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event) + "\n",
        "Timestamp": at.isoformat().replace("+00:00", "Z"),
        "SignatureVersion": "1",
        "Signature": "EXAMPLE==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
    }
    return Hook(
        "/anymail/amazon_ses/tracking/",
        json.dumps(message),
        content_type="text/plain; charset=UTF-8",  # SNS posts JSON as text/plain
        headers={
            "HTTP_X_AMZ_SNS_MESSAGE_ID": message_id,
            "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
        },
    )


def amazon_ses(kind: str, *, email: str, message_id: str, at: datetime, metadata=None) -> Hook:
    headers = [{"name": "From", "value": "The Monitor <monitor@example.org>"}]
    if metadata is not None:
        headers.append({"name": "X-Metadata", "value": json.dumps(metadata)})
    mail = {
        "timestamp": (at - timedelta(minutes=1)).isoformat(),
        "source": "monitor@example.org",
        "messageId": message_id,
        "destination": [email],
        "headers": headers,
    }

    def bounce(bounce_type: str, sub_type: str, status: str) -> dict:
        return {
            "notificationType": "Bounce",
            "mail": mail,
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": sub_type,
                "bouncedRecipients": [
                    {"emailAddress": email, "status": status, "diagnosticCode": f"smtp; {status}"}
                ],
                "timestamp": at.isoformat(),
                "feedbackId": str(uuid.uuid4()),
            },
        }

    events = {
        "hard_bounce": bounce("Permanent", "General", "5.1.1"),
        "transient": bounce("Transient", "MailboxFull", "4.2.2"),
        "complaint": {
            "notificationType": "Complaint",
            "mail": mail,
            "complaint": {
                "complainedRecipients": [{"emailAddress": email}],
                "complaintFeedbackType": "abuse",
                "userAgent": "Feedback Loop",
            },
        },
        "delivered": {
            "notificationType": "Delivery",
            "mail": mail,
            "delivery": {"recipients": [email], "smtpResponse": "250 ok"},
        },
        "opened": {
            "eventType": "Open",
            "mail": mail,
            "open": {"timestamp": at.isoformat(), "userAgent": "Mozilla/5.0"},
        },
    }
    return sns(events[kind], at=at)


BUILDERS: dict[str, Callable[..., Hook]] = {
    "postmark": postmark,
    "mailgun": mailgun,
    "amazon_ses": amazon_ses,
}


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture
def webhooks_on(settings):
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "WEBHOOK_SECRET": SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
    }
    return settings


@pytest.fixture
def client() -> Client:
    # What the ESP sees: a 500 stays a response instead of an exception in the test.
    return Client(raise_request_exception=False)


@dataclass
class Sent:
    """A delivered issue: one subscriber, one active subscription, one sent Delivery."""

    delivery: Delivery
    email: str

    def hook(self, esp: str, kind: str, *, delivery: Delivery | None = None, **extra) -> Hook:
        delivery = delivery or self.delivery
        options = {
            "email": delivery.email,
            "message_id": delivery.esp_message_id,
            "at": timezone.now() - timedelta(minutes=5),
            **extra,
        }
        return BUILDERS[esp](kind, **options)

    def another_delivery(self, number: int) -> Delivery:
        issue = IssueFactory(number=number, status=Issue.Status.SENT)
        return sent_delivery(
            issue=issue,
            subscriber_id=self.delivery.subscriber_id,
            subscription_id=self.delivery.subscription_id,
            email=self.email,
            sent_at=timezone.now() - timedelta(hours=1),
        )

    def subscription_status(self) -> str:
        return Subscription.objects.get(pk=self.delivery.subscription_id).status


def message_id() -> str:
    return f"<{uuid.uuid4().hex}@mg.example.org>"


def sent_delivery(**fields) -> Delivery:
    """A sent delivery with its own ESP message id, recorded as the engine does."""
    delivery = Delivery.objects.create(
        status=Delivery.Status.SENT, esp_message_id=message_id(), **fields
    )
    record.message_ids_record(
        issue_id=delivery.issue_id, sent_by_id={delivery.esp_message_id: [delivery.pk]}
    )
    return delivery


@pytest.fixture
def sent(publication, make_subscribers) -> Sent:
    issue = IssueFactory(number=11, status=Issue.Status.SENT)
    (subscription,) = make_subscribers(1)
    email = subscription.subscriber.email
    delivery = sent_delivery(
        issue=issue,
        subscriber=subscription.subscriber,
        subscription=subscription,
        email=email,
        sent_at=timezone.now() - timedelta(hours=1),
    )
    return Sent(delivery, email)


def snapshot() -> tuple:
    """Everything a webhook may change."""
    return (
        list(DeliveryEvent.objects.values_list("key", "kind", "email")),
        list(Suppression.objects.values_list("email", "reason", "lifted_at")),
        list(Subscription.objects.values_list("pk", "status")),
        SubscriptionEvent.objects.count(),
    )


# --- credentials ---------------------------------------------------------------------


@pytest.mark.parametrize("esp", ESPS)
def test_without_a_configured_secret_webhooks_refuse_everything(settings, client, sent, esp):
    settings.ANYMAIL = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"} | {
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY
    }
    before = snapshot()
    for secret in (SECRET, None):
        response = sent.hook(esp, "hard_bounce").post(client, secret=secret)
        assert response.status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize(
    ("esp", "status"), [("postmark", 400), ("mailgun", 400), ("amazon_ses", 401)]
)
def test_missing_credentials_are_refused(webhooks_on, client, sent, esp, status):
    before = snapshot()
    response = sent.hook(esp, "hard_bounce").post(client, secret=None)
    assert response.status_code == status
    if esp == "amazon_ses":  # SNS sends credentials only after this challenge
        assert response["WWW-Authenticate"].startswith("Basic ")
    assert snapshot() == before


@pytest.mark.parametrize("esp", ESPS)
def test_wrong_credentials_are_refused(webhooks_on, client, sent, esp):
    before = snapshot()
    for wrong in ("monitor-esp:guess", "someone:" + SECRET.split(":")[1], SECRET + "x"):
        response = sent.hook(esp, "hard_bounce").post(client, secret=wrong)
        assert response.status_code == 400
    assert snapshot() == before


def test_mailgun_needs_its_signature_as_well(webhooks_on, client, sent):
    before = snapshot()
    hook = sent.hook("mailgun", "hard_bounce")
    payload = json.loads(hook.body)
    forged = mailgun_signed(payload["event-data"], key="not-the-signing-key")
    response = Hook(hook.path, json.dumps(forged)).post(client)
    assert response.status_code == 400
    assert snapshot() == before


def test_a_webhook_for_an_esp_not_set_up_here_answers_404(settings, client, sent):
    # The secret is set, Mailgun's signing key is not: anymail cannot check its signature.
    settings.ANYMAIL = {
        k: v for k, v in settings.ANYMAIL.items() if not k.startswith("MAILGUN")
    } | {"WEBHOOK_SECRET": SECRET}
    before = snapshot()
    assert sent.hook("mailgun", "hard_bounce").post(client).status_code == 404
    assert snapshot() == before


# --- what events do ---------------------------------------------------------------------


@pytest.mark.parametrize("esp", ESPS)
def test_hard_bounce_suppresses_the_address_and_ends_its_subscriptions(
    webhooks_on, client, sent, esp
):
    response = sent.hook(esp, "hard_bounce").post(client)
    assert response.status_code == 200
    suppression = Suppression.objects.active().get()
    assert (suppression.email, suppression.reason) == (sent.email, Suppression.Reason.BOUNCED)
    assert sent.subscription_status() == Status.BOUNCED
    event = DeliveryEvent.objects.get()
    assert (event.kind, event.delivery_id, event.issue_id) == (
        Kind.BOUNCED,
        sent.delivery.pk,
        sent.delivery.issue_id,
    )
    assert "5.1.1" in event.description


@pytest.mark.parametrize("esp", ESPS)
def test_complaint_suppresses_and_ends_subscriptions_as_complained(webhooks_on, client, sent, esp):
    assert sent.hook(esp, "complaint").post(client).status_code == 200
    assert Suppression.objects.active().get().reason == Suppression.Reason.COMPLAINED
    assert sent.subscription_status() == Status.COMPLAINED
    assert DeliveryEvent.objects.get().kind == Kind.COMPLAINED


@pytest.mark.parametrize("esp", ["postmark", "mailgun"])  # SES has no unsubscribe event
def test_esp_unsubscribe_ends_subscriptions_as_unsubscribed(webhooks_on, client, sent, esp):
    assert sent.hook(esp, "unsubscribe").post(client).status_code == 200
    assert sent.subscription_status() == Status.UNSUBSCRIBED
    assert Suppression.objects.active().get().reason == Suppression.Reason.UNSUBSCRIBED
    assert DeliveryEvent.objects.get().kind == Kind.UNSUBSCRIBED


@pytest.mark.parametrize("esp", ESPS)
def test_transient_bounce_is_recorded_only(webhooks_on, client, sent, esp):
    assert sent.hook(esp, "transient").post(client).status_code == 200
    event = DeliveryEvent.objects.get()
    assert (event.kind, event.delivery_id) == (Kind.DEFERRED, sent.delivery.pk)
    assert not Suppression.objects.exists()
    assert sent.subscription_status() == Status.ACTIVE


@pytest.mark.parametrize("esp", ESPS)
def test_three_transient_failures_in_a_row_across_issues_suppress_as_bounced(
    webhooks_on, client, sent, esp
):
    # The ESP retrying one message reports several deferrals: still one issue.
    for minutes in (50, 40, 30):
        hook = sent.hook(esp, "transient", at=timezone.now() - timedelta(minutes=minutes))
        assert hook.post(client).status_code == 200
    second = sent.another_delivery(12)
    assert sent.hook(esp, "transient", delivery=second).post(client).status_code == 200
    assert not Suppression.objects.exists()

    third = sent.another_delivery(13)
    assert sent.hook(esp, "transient", delivery=third).post(client).status_code == 200
    suppression = Suppression.objects.active().get()
    assert suppression.reason == Suppression.Reason.BOUNCED
    assert sent.subscription_status() == Status.BOUNCED


@pytest.mark.parametrize("esp", ESPS)
def test_a_delivery_in_between_breaks_the_run_of_transient_failures(webhooks_on, client, sent, esp):
    now = timezone.now()
    second, third = sent.another_delivery(12), sent.another_delivery(13)
    steps = [
        (sent.delivery, "transient", 50),
        (second, "transient", 40),
        (second, "delivered", 35),
        (third, "transient", 30),
    ]
    for delivery, kind, minutes in steps:
        hook = sent.hook(esp, kind, delivery=delivery, at=now - timedelta(minutes=minutes))
        assert hook.post(client).status_code == 200
    assert not Suppression.objects.exists()
    assert sent.subscription_status() == Status.ACTIVE


@pytest.mark.parametrize("esp", ESPS)
def test_late_delivered_or_opened_never_undoes_a_suppression(webhooks_on, client, sent, esp):
    now = timezone.now()
    assert (
        sent.hook(esp, "hard_bounce", at=now - timedelta(minutes=10)).post(client).status_code
        == 200
    )
    for kind in ("delivered", "opened"):
        response = sent.hook(esp, kind, at=now - timedelta(minutes=1)).post(client)
        assert response.status_code == 200
    kinds = sorted(DeliveryEvent.objects.values_list("kind", flat=True))
    assert kinds == sorted([Kind.BOUNCED, Kind.DELIVERED, Kind.OPENED])
    assert Suppression.objects.active().get().reason == Suppression.Reason.BOUNCED
    assert sent.subscription_status() == Status.BOUNCED


@pytest.mark.parametrize("esp", ESPS)
def test_a_replay_changes_nothing(webhooks_on, client, sent, esp):
    hook = sent.hook(esp, "hard_bounce")
    assert hook.post(client).status_code == 200
    after_first = snapshot()
    assert hook.post(client).status_code == 200
    assert snapshot() == after_first
    # Staff lift the suppression; the ESP sends the old bounce once more.
    suppression_lift(suppression=Suppression.objects.get(), by=None, note="mailbox fixed")
    lifted = snapshot()
    assert hook.post(client).status_code == 200
    assert snapshot() == lifted
    assert not Suppression.objects.active().exists()


@pytest.mark.parametrize("kind", ["delivered", "opened", "unsubscribe"])
def test_events_without_an_id_are_applied_once(webhooks_on, client, sent, kind):
    # Postmark sends no event id with these; the event's own content is the key.
    hook = sent.hook("postmark", kind)
    assert json.loads(hook.body).get("ID") is None
    for _ in range(3):
        assert hook.post(client).status_code == 200
    assert DeliveryEvent.objects.count() == 1
    assert SubscriptionEvent.objects.filter(to_status=Status.UNSUBSCRIBED).count() == (
        1 if kind == "unsubscribe" else 0
    )


@pytest.mark.parametrize(
    ("esp", "kind"),
    [(esp, kind) for esp in ESPS for kind in ("hard_bounce", "complaint")]
    + [("postmark", "unsubscribe"), ("mailgun", "unsubscribe")],  # SES has no unsubscribe
)
def test_an_event_for_an_address_never_mailed_is_stored_and_changes_nothing(
    webhooks_on, client, sent, make_subscribers, esp, kind
):
    # Subscribed, but no delivery was ever sent to this address, nor under that id.
    (stranger,) = make_subscribers(1, prefix="stranger")
    address = stranger.subscriber.email
    hook = BUILDERS[esp](kind, email=address.title(), message_id=message_id(), at=timezone.now())
    before = snapshot()

    assert hook.post(client).status_code == 200

    event = DeliveryEvent.objects.get()
    assert (event.delivery_id, event.email) == (None, address)
    assert snapshot()[1:] == before[1:]  # no suppression, every subscription as it was
    assert Subscription.objects.get(pk=stranger.pk).status == Status.ACTIVE


@pytest.mark.parametrize("esp", ESPS)
def test_a_bounce_for_an_unknown_message_to_an_address_we_mailed_still_suppresses(
    webhooks_on, client, sent, esp
):
    # The ESP's message id is not one we recorded; the address had the issue an hour ago.
    hook = sent.hook(esp, "hard_bounce", message_id=message_id(), at=timezone.now())
    assert hook.post(client).status_code == 200
    assert DeliveryEvent.objects.get().delivery_id == sent.delivery.pk
    assert Suppression.objects.active().get().email == sent.email
    assert sent.subscription_status() == Status.BOUNCED


# --- bad bodies, failing database ---------------------------------------------------------


def _malformed(esp: str, sent: Sent) -> list[Hook]:
    good = sent.hook(esp, "hard_bounce")
    if esp == "postmark":
        return [
            Hook(good.path, "{not json"),
            Hook(good.path, b"\xff\xfe{}"),
            Hook(good.path, "[1, 2, 3]"),
            Hook(good.path, json.dumps({"RecordType": "Bounce", "BouncedAt": "2026-13-45T99:00"})),
            # well-formed JSON that names neither a recipient nor a message
            Hook(good.path, json.dumps({"RecordType": "Bounce", "Type": "HardBounce"})),
        ]
    if esp == "mailgun":
        event_data = json.loads(good.body)["event-data"]
        del event_data["event"]
        return [
            Hook(good.path, "{not json"),
            Hook(good.path, json.dumps({"signature": "nope"})),
            Hook(good.path, json.dumps(mailgun_signed(event_data))),
            Hook(good.path, json.dumps(mailgun_signed({"event": "failed", "timestamp": "soon"}))),
        ]
    ses_event = json.loads(json.loads(good.body)["Message"])
    del ses_event["bounce"]["bouncedRecipients"]
    not_json = json.loads(good.body) | {"Message": "{not json either"}
    return [
        Hook(good.path, "{not json", good.content_type, good.headers),
        Hook(good.path, json.dumps({"Type": "Notification"}), good.content_type, good.headers),
        Hook(good.path, json.dumps(not_json), good.content_type, good.headers),
        sns(ses_event, at=timezone.now()),
    ]


@pytest.mark.parametrize("esp", ESPS)
def test_a_malformed_body_answers_400_and_changes_nothing(webhooks_on, client, sent, esp):
    before = snapshot()
    for hook in _malformed(esp, sent):
        response = hook.post(client)
        assert response.status_code == 400, hook.body
    assert snapshot() == before


@pytest.mark.parametrize("esp", ESPS)
def test_a_database_error_answers_503_so_that_the_esp_retries(webhooks_on, client, sent, esp):
    table = DeliveryEvent._meta.db_table

    def unavailable(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT") and table in sql:
            raise OperationalError("the database is not answering")
        return execute(sql, params, many, context)

    hook = sent.hook(esp, "hard_bounce")
    before = snapshot()
    with connection.execute_wrapper(unavailable):
        response = hook.post(client)
    assert (response.status_code, response["Retry-After"]) == (503, "120")
    assert snapshot() == before
    # The ESP's retry goes through and is applied once.
    assert hook.post(client).status_code == 200
    assert DeliveryEvent.objects.count() == 1
    assert Suppression.objects.active().get().reason == Suppression.Reason.BOUNCED


def test_a_webhook_is_a_few_queries(webhooks_on, client, sent, django_assert_max_num_queries):
    hook = sent.hook("postmark", "hard_bounce", metadata={"delivery_id": str(sent.delivery.pk)})
    # lookup, insert, suppression, one subscription ended: no work proportional to history
    with django_assert_max_num_queries(20):
        assert hook.post(client).status_code == 200
    with django_assert_max_num_queries(6):
        assert hook.post(client).status_code == 200  # the replay


# --- done: the next issue respects the suppression -------------------------------------------


@pytest.mark.parametrize("esp", ESPS)
def test_after_a_bounce_webhook_the_next_issue_skips_the_address(
    webhooks_on, client, sent, make_subscribers, esp
):
    make_subscribers(2, prefix="other")
    assert sent.hook(esp, "hard_bounce").post(client).status_code == 200

    next_issue = IssueFactory(number=12, status=Issue.Status.APPROVED)
    result = services.send_start(issue=next_issue, by=None)
    assert result.created
    recipients = set(Delivery.objects.filter(issue=next_issue).values_list("email", flat=True))
    assert recipients == {"other0@example.org", "other1@example.org"}
    assert sent.email not in recipients


def test_without_the_secret_a_bounce_changes_nothing_for_the_next_issue(settings, client, sent):
    settings.ANYMAIL = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"}
    assert sent.hook("postmark", "hard_bounce").post(client).status_code == 403
    next_issue = IssueFactory(number=12, status=Issue.Status.APPROVED)
    services.send_start(issue=next_issue, by=None)
    assert list(Delivery.objects.filter(issue=next_issue).values_list("email", flat=True)) == [
        sent.email
    ]
