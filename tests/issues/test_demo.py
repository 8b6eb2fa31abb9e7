"""`load_demo`: a demo that shows the main job, loaded twice without a duplicate, whose
approved issue goes to the outbox through a real worker."""

from __future__ import annotations

import email
import email.policy
import re
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command

from delivery import services
from issues.models import Issue, Publication
from subscriptions.models import Subscriber, Subscription
from tests.helpers import wait_for


def every_table() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


def load() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_demo_loads_twice_without_duplicates_and_prints_passwords_once():
    first = load()
    counts = every_table()

    second = load()

    assert every_table() == counts
    assert first.count("password:") == 2 and "password:" not in second
    assert set(Publication.objects.values_list("slug", flat=True)) == {"monitor", "fortnight"}
    assert Issue.objects.sent().count() == 9  # the seed and the eight issues it cites
    assert Issue.objects.get(status=Issue.Status.APPROVED).articles.exists()
    assert Subscriber.objects.count() == 25
    offline = Subscriber.objects.filter(subscriptions__status=Subscription.Status.OFFLINE)
    assert offline.count() == 5 and all(s.join_code for s in offline)
    assert Subscription.objects.filter(status=Subscription.Status.BOUNCED).count() == 1
    assert Subscription.objects.filter(format=Subscription.Format.TEXT).count() == 1
    groups = {u.username: [g.name for g in u.groups.all()] for u in User.objects.all()}
    assert groups == {"analyst": ["Analysts"], "editor": ["Editors"]}
    assert User.objects.get(username="editor").has_perm("delivery.view_outbox")
    assert not User.objects.get(username="analyst").has_perm("delivery.view_outbox")


@pytest.mark.django_db
def test_every_cross_reference_of_the_seed_leads_to_a_demo_page(client):
    load()
    page = client.get("/monitor/6/11/").content.decode()

    links = re.findall(r'<a href="(/(?:monitor|fortnight)/\d+/\d+/)">', page)

    assert len(links) == 7  # October 7, December 8, 10, 15, 16; October 8, December 17
    for link in links:
        cited = client.get(link)
        assert cited.status_code == 200
        assert "Demo content." in cited.content.decode()


def test_the_approved_demo_issue_sends_to_the_outbox_through_a_worker(
    celery_worker_process, tmp_path, settings
):
    load()
    issue = Issue.objects.get(status=Issue.Status.APPROVED)
    audience = Subscription.objects.audience(publication_id=issue.publication_id).count()
    assert audience == 19  # twenty by email, less the one who bounced
    celery_worker_process(MONITOR_VAR_DIR=str(tmp_path))

    services.send_start(issue=issue, by=User.objects.get(username="editor"))

    outbox = tmp_path / "outbox"
    wait_for(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, timeout=90)
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == audience
    messages = [
        email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files
    ]
    recipients = {m["To"].addresses[0].addr_spec for m in messages}
    assert "sam.turner@example.net" not in recipients
    text_only = [m for m in messages if not m.is_multipart()]
    assert [m["To"].addresses[0].addr_spec for m in text_only] == ["olga.sorokina@example.com"]
