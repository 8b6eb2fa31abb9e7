"""The keyed hash of an address, which is what the suppression list matches on.

The rules:
* An address is hashed in its stored form (trimmed, lower-cased) with HMAC-SHA256,
  keyed by a secret derived from SECRET_KEY (`salted_hmac`). Every suppression entry
  carries the hash of its address, and every subscriber the hash of theirs, so that
  the send's SQL compares two indexed columns; an entry for an erased reader keeps
  the hash alone. Without the key, a hash does not tell whether a guessed address
  was ever here.
* A lookup of one address (`address_hashes`) matches its hash under SECRET_KEY and
  under each of SECRET_KEY_FALLBACKS: with the old key kept as a fallback, a rotated
  key suppresses exactly what it did before.
* The hashes the database compares with each other are made with SECRET_KEY.
  `hashes_refresh` (after every `migrate`, and daily with the retention run) makes
  again those of subscribers and of entries that still name their address; an erased
  entry cannot be rehashed, its address being gone, and keeps the hash of the key it
  was made with, recorded by `key_id`, unless that address is among the subscribers
  when the refresh after the change runs.
* An erased entry made with a key that is neither SECRET_KEY nor a fallback would
  suppress nothing any more: `check_erased_keys` (subscriptions.E001) fails `migrate`
  and `manage.py check --database default` until that key is a fallback again.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core import checks
from django.db import transaction
from django.utils.crypto import salted_hmac

SALT = "monitor.subscriptions.address"
REFRESH_BATCH = 2000


def _keys() -> list[str]:
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


def address_hash(address: str, *, secret: str | None = None) -> str:
    """The hash of an address under SECRET_KEY (or `secret`); "" for no address."""
    address = (address or "").strip().lower()
    if not address:
        return ""
    key = settings.SECRET_KEY if secret is None else secret
    return salted_hmac(SALT, address, secret=key, algorithm="sha256").hexdigest()


def address_hashes(address: str) -> list[str]:
    """The hashes an entry for this address may carry: under SECRET_KEY first, then
    under each fallback key."""
    return [address_hash(address, secret=key) for key in _keys()] if address else []


def key_id(*, secret: str | None = None) -> str:
    """A name for the key that made a hash (not secret: it reveals nothing of the key)."""
    key = settings.SECRET_KEY if secret is None else secret
    return salted_hmac(SALT + ".key-id", "", secret=key, algorithm="sha256").hexdigest()[:16]


def hashes_refresh() -> int:
    """Make with SECRET_KEY every hash that can be made again; returns how many
    changed. Subscribers go first and named entries last, so that a run cut short
    leaves entries of an old key behind, which the next run takes for a sign to
    look at every subscriber again."""
    from subscriptions.models import Subscriber, Suppression

    current = key_id()
    stale_entries = Suppression.objects.exclude(key_id=current)
    first = Subscriber.objects.exclude(email=None).order_by("pk").first()
    if not stale_entries.exclude(email="").exists() and (
        first is None or first.email_hash == address_hash(first.email)
    ):
        return 0  # erased entries of an old key alone: nothing can be made again
    others = [key for key in settings.SECRET_KEY_FALLBACKS if key_id(secret=key) != current]
    erased = dict(stale_entries.filter(email="").values_list("email_hash", "pk")) if others else {}
    changed = 0
    last = 0
    while True:
        batch = list(
            Subscriber.objects.exclude(email=None)
            .filter(pk__gt=last)
            .order_by("pk")
            .only("pk", "email", "email_hash")[:REFRESH_BATCH]
        )
        if not batch:
            break
        last = batch[-1].pk
        stale = [s for s in batch if s.email_hash != address_hash(s.email)]
        for subscriber in stale:
            subscriber.email_hash = address_hash(subscriber.email)
        changed += len(stale)
        with transaction.atomic():
            Subscriber.objects.bulk_update(stale, ["email_hash"])
            # An erased address that subscribed again: its entry moves to this key.
            for subscriber in batch:
                for key in others:
                    pk = erased.pop(address_hash(subscriber.email, secret=key), None)
                    if pk is not None:
                        changed += Suppression.objects.filter(pk=pk).update(
                            email_hash=subscriber.email_hash, key_id=current
                        )
    for entry in stale_entries.exclude(email="").only("pk", "email"):
        changed += Suppression.objects.filter(pk=entry.pk).update(
            email_hash=address_hash(entry.email), key_id=current
        )
    return changed


def check_erased_keys(databases: Iterable[str] | None = None, **kwargs: object) -> list:
    """subscriptions.E001: entries of erased readers whose key is no longer configured."""
    if not databases or "default" not in databases:
        return []
    from django.db.utils import DatabaseError

    from subscriptions.models import Suppression

    known = {key_id(secret=key) for key in _keys()}
    try:
        lost = Suppression.objects.filter(email="").exclude(key_id__in=known).count()
    except DatabaseError:  # not migrated yet
        return []
    if not lost:
        return []
    return [
        checks.Error(
            f"{lost} suppression entries of erased readers were hashed with a secret key "
            "that is neither DJANGO_SECRET_KEY nor in DJANGO_SECRET_KEY_FALLBACKS: those "
            "readers would be mailed again.",
            hint="Put the previous DJANGO_SECRET_KEY back in DJANGO_SECRET_KEY_FALLBACKS "
            "(and keep it there).",
            id="subscriptions.E001",
        )
    ]
