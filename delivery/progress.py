"""How far a send has got: its rows counted by status."""

from __future__ import annotations

from django.db.models import Count

from delivery.models import Delivery
from issues.models import Issue

Status = Delivery.Status


def progress(issue: Issue) -> dict[str, int]:
    """Counts of the issue's delivery rows by status, plus the total."""
    counts = {s: 0 for s in Status.values}
    for row in Delivery.objects.filter(issue=issue).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in Status.values)
    return counts
