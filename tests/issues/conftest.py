"""Fixtures for the editorial tests: the volume of the publication, and its people."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from issues.models import Volume
from tests.factories import VolumeFactory


@pytest.fixture
def volume(publication) -> Volume:
    return VolumeFactory(publication=publication)


def _member_of(group: str, username: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.org", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def analyst(db) -> User:
    return _member_of("Analysts", "analyst")


@pytest.fixture
def editor(db) -> User:
    return _member_of("Editors", "editor")
