"""Every public page in each of its states, and every kind of message the system
sends: what the validity, accessibility and deliverability checks look at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import time_machine
from django.utils import timezone

from delivery.rendering import Recipient, RenderedIssue
from issues.models import Article, Issue, Volume
from subscriptions import emails, tokens
from subscriptions.models import ContactMessage, Subscriber, Subscription
from tests.helpers import confirm_path


@dataclass(frozen=True)
class PublicPage:
    name: str
    path: str
    status: int = 200
    form: dict[str, str] | None = None  # posted from the page's form when set


def public_pages(newsroom: dict[str, Any]) -> list[PublicPage]:
    """The pages, with the readers they need. Run in this order: a POST may change what
    a later page shows."""
    monitor = newsroom["monitor"]
    # an earlier volume: an archive page of its own, and more results than a search page
    earlier = Volume.objects.create(publication=monitor, number=5, year=1999)
    for number in range(1, 26):
        issue = Issue.objects.create(
            publication=monitor,
            volume=earlier,
            number=number,
            date=date(1999, 11, 1) + timedelta(days=number),
            status=Issue.Status.SENT,
        )
        Article.objects.create(
            issue=issue,
            headline=f"Minsk, week {number}",
            body="Lukashenka met the union council again.",
            regions="Belarus",
        )
    pending = Subscriber.objects.create(email="pending@example.org", name="Pat Pending")
    Subscription.objects.create(subscriber=pending, publication=monitor)
    reader = Subscriber.objects.create(email="reader@example.org", name="Ray Reader")
    active = Subscription.objects.create(
        subscriber=reader,
        publication=monitor,
        status=Subscription.Status.ACTIVE,
        confirmed_at=timezone.now(),
    )
    confirm = confirm_path(pending)
    unsubscribe = f"/unsubscribe/{tokens.make_token(tokens.UNSUBSCRIBE, active.pk)}/"
    preferences = f"/preferences/{tokens.make_token(tokens.PREFERENCES, reader.pk)}/"
    footer = f"/preferences/{tokens.make_token(tokens.FOOTER_PREFERENCES, reader.pk)}/"
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        expired = f"/preferences/{tokens.make_token(tokens.PREFERENCES, reader.pk)}/"
    # a postal reader joining with the code from the letter, and an invited legacy reader
    by_post = Subscriber.objects.create(postal_address="2 High St", join_code="JQ2X7K4M")
    Subscription.objects.create(
        subscriber=by_post, publication=monitor, status=Subscription.Status.OFFLINE
    )
    typed = "olive@example.org"
    digest = tokens.join_email_digest(typed)
    join_confirm = f"/join/confirm/{tokens.make_token(tokens.JOIN, f'{by_post.pk}.{digest}')}/"
    guest = Subscriber.objects.create(email="ivy@example.org", source="legacy-email")
    invitation = Subscription.objects.create(
        subscriber=guest, publication=monitor, invited_at=timezone.now()
    )
    invited = f"/subscribe/invitation/{tokens.make_token(tokens.INVITATION, invitation.pk)}/"
    with time_machine.travel(timezone.now() - timedelta(days=61)):
        invitation_expired = (
            f"/subscribe/invitation/{tokens.make_token(tokens.INVITATION, invitation.pk)}/"
        )
    back_issue, markdown = newsroom["back_issue"], newsroom["markdown_issue"]
    return [
        PublicPage("home", "/"),
        PublicPage("archive", monitor.get_absolute_url()),
        PublicPage("archive: an earlier volume", "/monitor/5/"),
        PublicPage("issue: the seed", back_issue.get_absolute_url()),
        PublicPage("issue: Markdown articles", markdown.get_absolute_url()),
        PublicPage("search: results", "/search/?q=Lukashenka"),
        PublicPage("search: nothing found", "/search/?q=nothingmatchesthis"),
        PublicPage("search: filtered, page 2", "/search/?q=Lukashenka&region=Belarus&page=2"),
        PublicPage("search: bad input", "/search/?q=%22*&year=1066"),
        PublicPage("subscribe", "/subscribe/"),
        PublicPage("subscribe: errors", "/subscribe/", 400, {"email": "not-an-address"}),
        PublicPage(
            "subscribe: sent",
            "/subscribe/",
            form={"email": "new@example.org", "name": "New Reader", "publications": "monitor"},
        ),
        PublicPage("confirm", confirm),
        PublicPage("confirm: done", confirm, form={}),
        PublicPage("confirm: bad link", "/subscribe/confirm/not-a-token/", 400),
        PublicPage("unsubscribe", unsubscribe),
        PublicPage("unsubscribe: done", unsubscribe, form={}),
        PublicPage("preferences", preferences),
        PublicPage(
            "preferences: saved",
            preferences,
            form={"name": "Ray Reader", "publications": "fortnight", "format": "text"},
        ),
        PublicPage(
            "preferences: confirmation sent",
            footer,
            form={"name": "Ray Reader", "publications": "monitor", "format": "text"},
        ),
        PublicPage("preferences: expired link", expired, 400),
        PublicPage("preferences: ask for a link", "/preferences/"),
        PublicPage("preferences: link sent", "/preferences/", form={"email": reader.email}),
        PublicPage("contact", "/contact/"),
        PublicPage("contact: errors", "/contact/", 400, {"email": "ray@"}),
        PublicPage(
            "contact: sent",
            "/contact/",
            form={
                "name": "Ray Reader",
                "email": reader.email,
                "subject": "Fax edition",
                "body": "Is the fax edition still printed?",
            },
        ),
        PublicPage("privacy", "/privacy/"),
        PublicPage("join", "/join/"),
        PublicPage("join: from the letter's QR code", "/join/jq2x-7k4m/"),
        PublicPage("join: wrong code", "/join/", 400, {"code": "ZZZZ-ZZZZ", "email": typed}),
        PublicPage("join: sent", "/join/", form={"code": "JQ2X-7K4M", "email": typed}),
        PublicPage("join: confirm", join_confirm),
        PublicPage("join: done", join_confirm, form={}),
        PublicPage("invitation", invited),
        PublicPage("invitation: accepted", invited, form={}),
        PublicPage("invitation: expired link", invitation_expired, 400),
        PublicPage("not found", "/no-such-publication/", 404),
    ]


# --- the admin ------------------------------------------------------------------------


def admin_log_in(page, base: str, username: str, password: str) -> None:
    """Log in through the admin's own form, as a person does."""
    page.goto(base + "/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Site administration").wait_for()


# --- messages -------------------------------------------------------------------------


def issue_recipient(subscription: Subscription, *, format: str = "html") -> Recipient:
    return Recipient.for_subscription(
        issue_id=0,
        subscriber_id=subscription.subscriber_id,
        subscription_id=subscription.pk,
        email=subscription.subscriber.email,
        name=subscription.subscriber.name,
        format=format,
    )


def issue_messages(newsroom: dict[str, Any]) -> dict[str, bytes]:
    """The real seed issue and the Markdown issue, as an HTML subscriber and a
    plain-text subscriber receive them."""
    subscriber = Subscriber.objects.create(email="ann.reader@example.net", name="Ann Reader")
    subscription = Subscription.objects.create(
        subscriber=subscriber,
        publication=newsroom["monitor"],
        status=Subscription.Status.ACTIVE,
        confirmed_at=timezone.now(),
    )
    out = {}
    for key in ("back_issue", "markdown_issue"):
        rendered = RenderedIssue(newsroom[key])
        for format in ("html", "text"):
            recipient = issue_recipient(subscription, format=format)
            out[f"issue {newsroom[key].number} ({format})"] = rendered.as_bytes(recipient)
    return out


def issue_html(newsroom: dict[str, Any]) -> dict[str, str]:
    """The HTML body of each issue email, as a subscriber's copy."""
    subscriber = Subscriber.objects.create(email="html.reader@example.net", name="Hal Reader")
    subscription = Subscription.objects.create(
        subscriber=subscriber, publication=newsroom["monitor"], status="active"
    )
    return {
        f"issue {newsroom[key].number} email": RenderedIssue(newsroom[key]).html.fill(
            issue_recipient(subscription)
        )
        for key in ("back_issue", "markdown_issue")
    }


def transactional_messages(newsroom: dict[str, Any]) -> dict[str, Any]:
    """One of each message built by subscriptions/emails.py."""
    monitor, brief = newsroom["monitor"], newsroom["brief"]
    subscriber = Subscriber.objects.create(email="tess@example.net", name="Tess Reader")
    pending = Subscription.objects.create(subscriber=subscriber, publication=monitor)
    approved = Subscription.objects.create(
        subscriber=subscriber, publication=brief, status=Subscription.Status.ACTIVE
    )
    other = Subscriber.objects.create(email="rex@example.net", name="Rex Refused")
    rejected = Subscription.objects.create(
        subscriber=other, publication=brief, status=Subscription.Status.UNSUBSCRIBED
    )
    message = ContactMessage.objects.create(
        name="Tess Reader",
        email=subscriber.email,
        subject="Back issues of 1999",
        body="Where can I find the issues of December 1999?\nThank you.",
        publication=monitor,
    )
    offline = Subscriber.objects.create(
        fax="+1 202 555 0101", join_code="JQ2X7K4N", join_email="tess.new@example.net"
    )
    Subscription.objects.create(
        subscriber=offline, publication=monitor, status=Subscription.Status.OFFLINE
    )
    guest = Subscriber.objects.create(
        email="ivy@example.net", name="Ivy Fax", source=Subscriber.Source.LEGACY_FAX
    )
    invited = Subscription.objects.create(
        subscriber=guest, publication=monitor, invited_at=timezone.now()
    )
    return {
        "invitation": emails.invitation_message(invited),
        "invitation reminder": emails.invitation_message(invited, reminder=2),
        "join confirmation": emails.join_confirmation_message(
            offline, list(offline.subscriptions.all())
        ),
        "confirmation": emails.confirmation_message(subscriber, [pending]),
        "welcome": emails.welcome_message(subscriber, [pending]),
        "request approved": emails.request_decision_message(approved),
        "request rejected": emails.request_decision_message(rejected),
        "preferences link": emails.preferences_link_message(subscriber),
        "contact acknowledgement": emails.contact_acknowledgement_message(message),
        "contact notification": emails.contact_notification_message(message),
    }


def html_part(message) -> str:
    """The HTML alternative of a Django EmailMultiAlternatives."""
    return next(content for content, mimetype in message.alternatives if mimetype == "text/html")


def wire_bytes(message) -> bytes:
    """The bytes Django's SMTP backend puts on the wire for this message."""
    return message.message().as_bytes(linesep="\r\n")
