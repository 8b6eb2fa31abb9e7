"""Schedules are entered and shown in the office's zone (TIME_ZONE, America/New_York by
default) and stored in UTC, across a change of daylight saving time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.messages import get_messages

from issues.models import Issue
from tests.helpers import member_of, status_of, url

pytestmark = pytest.mark.django_db

# Saturday before the clocks go forward (Sunday 8 March 2026, 02:00 EST -> 03:00 EDT).
BEFORE_THE_CHANGE = datetime(2026, 3, 7, 17, 0, tzinfo=UTC)  # 12:00 EST


@pytest.fixture
def editor() -> User:
    return member_of("Editors", "editor")


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_office_zone_is_new_york_by_default():
    assert settings.TIME_ZONE == "America/New_York"


@pytest.mark.parametrize(
    ("typed", "stored", "offset"),
    [
        ("2026-03-07T20:00", datetime(2026, 3, 8, 1, 0, tzinfo=UTC), "EST"),
        ("2026-03-09T09:00", datetime(2026, 3, 9, 13, 0, tzinfo=UTC), "EDT"),
    ],
)
def test_a_local_schedule_round_trips_across_the_dst_change(
    client, editor, issue, typed, stored, offset
):
    client.force_login(editor)
    with time_machine.travel(BEFORE_THE_CHANGE, tick=False):
        response = client.post(url("schedule", issue), {"at": typed})

        issue.refresh_from_db()
        assert issue.status == Issue.Status.SCHEDULED
        assert issue.scheduled_at == stored
        local = typed.replace("T", " ")
        assert texts(response) == [
            f"{issue} will be sent at {local}:00 {offset} (America/New_York)."
        ]
        change = client.get(url("change", issue)).content.decode()
        assert f"Scheduled for {local}:00 (America/New_York)." in change
        listing = client.get("/admin/issues/issue/").content.decode()
        assert f"{local} America/New_York" in listing


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("2026-03-07T11:59", "2026-03-07 11:59 America/New_York is in the past"),
        ("2026-03-08T02:30", "may not exist"),  # the hour the clocks skip
        ("2026-11-01T01:30", "ambiguous"),  # the hour that happens twice
    ],
)
def test_a_past_or_impossible_local_time_is_refused_with_a_message(
    client, editor, issue, typed, why
):
    client.force_login(editor)
    with time_machine.travel(BEFORE_THE_CHANGE, tick=False):
        response = client.post(url("schedule", issue), {"at": typed})

    assert status_of(issue) == Issue.Status.APPROVED
    (message,) = texts(response)
    assert message.startswith("Schedule: ") and why in message
