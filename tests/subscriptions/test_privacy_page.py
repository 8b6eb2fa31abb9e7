"""/privacy/ says what is kept about readers, for how long (from the settings), and how
to get it or have it erased; every footer, of the site and of every email, links to it."""

from __future__ import annotations

import email
import email.policy

from django.conf import settings
from django.core import mail

from delivery.rendering import Recipient, RenderedIssue
from issues.models import Issue
from subscriptions import services
from tests.factories import IssueFactory

PRIVACY = f"{settings.SITE_URL}/privacy/"


def test_the_page_gives_the_retention_times_and_how_to_ask(client, publication):
    page = client.get("/privacy/").content.decode()

    assert "deleted after 30 days" in page
    assert "deleted after 12 months" in page  # IP addresses
    assert "deleted after 13 months" in page  # opens and clicks
    assert "A copy." in page and "Erasure." in page
    assert f'href="mailto:{publication.contact_email}"' in page
    assert 'href="/contact/"' in page
    assert "We do not record when you open an issue" in page


def test_the_page_follows_the_settings_and_the_publications_choices(client, publication, settings):
    settings.RETAIN_UNCONFIRMED_DAYS = 14
    settings.RETAIN_EVENTS_DAYS = 90
    publication.track_opens = True
    publication.save()

    page = client.get("/privacy/").content.decode()

    assert "deleted after 14 days" in page
    assert "deleted after 3 months" in page
    assert "Opens are recorded only for The Monitor" in page
    assert "links you follow only for no publication" in page


def test_every_site_page_links_to_it_in_its_footer(client, publication):
    IssueFactory(volume__publication=publication, status=Issue.Status.SENT)
    for path in ("/", "/subscribe/", "/contact/", "/monitor/", "/monitor/6/1/"):
        page = client.get(path).content.decode()
        footer = page[page.index('<footer class="site-footer">') :]
        assert 'href="/privacy/"' in footer, path


def test_an_issue_email_links_to_it_in_both_parts(publication):
    issue = IssueFactory(volume__publication=publication)
    rendered = RenderedIssue(issue)
    recipient = Recipient(
        delivery_key="1.1",
        email="reader@example.org",
        name="",
        unsubscribe_url="https://example.org/u/",
        preferences_url="https://example.org/p/",
    )
    parsed = email.message_from_bytes(rendered.as_bytes(recipient), policy=email.policy.default)

    assert f'href="{PRIVACY}"' in parsed.get_body(("html",)).get_content()
    assert PRIVACY in parsed.get_body(("plain",)).get_content()


def test_every_transactional_email_links_to_it(publication, commit):
    with commit():
        services.subscription_request(
            email="reader@example.org",
            name="",
            organization="",
            publications=[publication],
            ip=None,
            form="web",
        )
        services.contact_message_create(
            name="Reader",
            email="reader@example.org",
            subject="Hello",
            body="A question.",
            publication=publication,
            ip=None,
        )

    assert len(mail.outbox) == 3  # confirmation, acknowledgement, notification to staff
    for message in mail.outbox:
        assert PRIVACY in message.body, message.subject
        assert f'href="{PRIVACY}"' in message.alternatives[0][0], message.subject
