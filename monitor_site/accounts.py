"""Staff accounts made by the setup commands: created once, the password printed once."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction


def account_create_once(
    *,
    username: str,
    email: str,
    superuser: bool = False,
    groups: Iterable[str] = (),
) -> str | None:
    """Create a staff account with a random password and return that password, or None
    when the username exists already (then nothing about it changes: the password is
    shown only the one time it is made)."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        return None
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        if superuser:
            User.objects.create_superuser(username=username, email=email, password=password)
        else:
            user = User.objects.create_user(
                username=username, email=email, password=password, is_staff=True
            )
            user.groups.set(Group.objects.filter(name__in=list(groups)))
    return password
