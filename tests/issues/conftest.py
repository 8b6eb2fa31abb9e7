"""Fixtures for the editorial tests: a publication with one issue, and its people."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User

from issues.models import Article, Issue, Publication, Volume


@pytest.fixture
def publication(db) -> Publication:
    return Publication.objects.create(
        name="The Monitor",
        slug="monitor",
        publisher_name="The Jamestown Foundation",
        contact_email="pubs@example.org",
        notice="Copyright (c) The Jamestown Foundation",
    )


@pytest.fixture
def volume(publication) -> Volume:
    return Volume.objects.create(publication=publication, number=6, year=2000)


@pytest.fixture
def make_issue(publication, volume) -> Callable[..., Issue]:
    def make(
        number: int = 1, status: str = Issue.Status.DRAFT, articles: int = 1, **fields
    ) -> Issue:
        issue = Issue.objects.create(
            publication=fields.pop("publication", publication),
            volume=fields.pop("volume", volume),
            number=number,
            status=status,
            **fields,
        )
        for position in range(articles):
            Article.objects.create(
                issue=issue,
                position=position,
                headline=f"Headline {number}.{position}",
                body=f"Body of article {position} in issue {number}.",
            )
        return issue

    return make


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
