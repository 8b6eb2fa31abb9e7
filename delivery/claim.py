"""The claim: a worker takes up to a chunk of an issue's queued, due rows in an id range
with one conditional UPDATE, marking them `sending` with its own token and a lease.
Zero rows means someone else has them. Rows whose worker dies go back to the queue when
the lease runs out (`sweep`); a live worker renews it while it sends.

Each claimed row's subscription is read again: someone who unsubscribed, or whose
address was suppressed, a second before gets nothing (`skipped`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from delivery.dispatch import due
from delivery.models import Delivery
from subscriptions.models import Subscription, Suppression

Status = Delivery.Status


@dataclass
class Claim:
    mine: QuerySet[Delivery]  # the rows still carrying this claim
    # (id, email, attempts, subscriber id, subscription id, name, format) of each row to send
    rows: list[tuple[int, str, int, int, int, str, str]]
    claimed: int
    skipped: int

    def renew(self) -> int:
        """Extend the lease of the rows not recorded yet; returns how many still carry
        the claim (fewer than expected: the sweeper took some back)."""
        return self.mine.update(lease_until=timezone.now() + _lease())


def _lease() -> timedelta:
    return timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)


def rows_claim(*, issue_id: int, lo: int, hi: int, size: int, names: bool) -> Claim | None:
    """Claim up to `size` rows in [lo, hi]; None if there was none to claim. `names`:
    read the subscribers' names only where the messages use them."""
    token = uuid.uuid4()
    queued = Delivery.objects.filter(
        issue_id=issue_id, id__gte=lo, id__lte=hi, status=Status.QUEUED
    ).filter(due())
    if hi - lo >= size:  # one scan of the id range, up to its size-th claimable row
        last = Coalesce(Subquery(queued.order_by("id").values("id")[size - 1 : size]), Value(hi))
        queued = queued.filter(id__lte=last)
    claimed = queued.update(
        status=Status.SENDING,
        claim=token,
        lease_until=timezone.now() + _lease(),
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    mine = Delivery.objects.filter(issue_id=issue_id, id__gte=lo, id__lte=hi, claim=token)
    rows = list(
        mine.annotate(
            # by the keyed hash, the only thing an erased reader's entry holds
            suppressed=Exists(
                Suppression.objects.active().filter(email_hash=OuterRef("subscriber__email_hash"))
            )
        )
        .order_by("id")
        .values_list(
            "id",
            "email",
            "attempts",
            "subscriber_id",
            "subscription_id",
            "subscriber__name" if names else Value(""),
            "subscription__format",
            "subscription__status",
            "suppressed",
        )
    )
    active = Subscription.Status.ACTIVE
    skipped = {row[0] for row in rows if row[8] or row[7] != active}
    if skipped:
        mine.filter(id__in=skipped).update(
            status=Status.SKIPPED,
            claim=None,
            lease_until=None,
            last_error="Unsubscribed or suppressed before sending.",
        )
    return Claim(
        mine=mine,
        rows=[row[:7] for row in rows if row[0] not in skipped],
        claimed=claimed,
        skipped=len(skipped),
    )
