"""Counts of the ESP events that are no longer stored.

Open and click events are deleted once their retention time is over
(delivery/retention.py), and every event about an erased reader at once
(delivery/readers.py); the report's figures must not change when they go. Before
events are deleted, `events_fold` adds them to EventTally, per issue, kind and
machine: the number of events, and the number of addresses, each counted when the
last of its events of that kind for that issue goes. The report adds the tallies to
the events still stored, so everyone is counted once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F

from delivery.models import DeliveryEvent, EventTally


def events_fold(ids: Sequence[int]) -> int:
    """Add the events with these ids to the tallies of their issues and delete them,
    in one transaction; returns how many were deleted. A handful of queries whatever
    the number of ids (keep it to a few thousand)."""
    with transaction.atomic():
        rows = list(
            DeliveryEvent.objects.filter(pk__in=ids).values_list(
                "pk", "issue_id", "kind", "machine", "email"
            )
        )
        if not rows:
            return 0
        ids = [pk for pk, *_ in rows]
        counted = [
            (issue, kind, machine, email) for _, issue, kind, machine, email in rows if issue
        ]
        events = Counter((issue, kind, machine) for issue, kind, machine, _ in counted)
        # Addresses with events of the same kind that stay are counted when those go.
        staying = set(
            DeliveryEvent.objects.filter(
                issue_id__in={c[0] for c in counted},
                kind__in={c[1] for c in counted},
                email__in={c[3] for c in counted},
            )
            .exclude(pk__in=ids)
            .values_list("issue_id", "kind", "machine", "email")
            .distinct()
        )
        people: dict[tuple, set[str]] = defaultdict(set)
        for key in set(counted) - staying:
            people[key[:3]].add(key[3])
        for (issue, kind, machine), n in events.items():
            tally, _ = EventTally.objects.get_or_create(issue_id=issue, kind=kind, machine=machine)
            EventTally.objects.filter(pk=tally.pk).update(
                events=F("events") + n,
                people=F("people") + len(people.get((issue, kind, machine), ())),
            )
        deleted, _ = DeliveryEvent.objects.filter(pk__in=ids).delete()
    return deleted
