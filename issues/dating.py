"""Dates for back issues imported without one, estimated from their volume's dated
issues: between two dated issues by the numbers' share of the days between them, before
the first or after the last by the volume's usual days per issue. An estimate is never
stored; it is shown as one ("about January 18, 2000")."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import date, timedelta
from itertools import pairwise

from issues.models import Issue


def estimated_dates(issues: Iterable[Issue]) -> dict[int, date]:
    """Estimated dates of the undated issues among `issues` (one volume's), by issue id;
    none when the volume has fewer than two dated issues."""
    issues = list(issues)
    dated = sorted((i.number, i.date) for i in issues if i.date is not None)
    if len(dated) < 2:
        return {}
    pace = statistics.median(
        (d2 - d1).days / (n2 - n1) for (n1, d1), (n2, d2) in pairwise(dated) if n2 > n1
    )
    estimates = {}
    for issue in issues:
        if issue.date is not None:
            continue
        before = [(n, d) for n, d in dated if n < issue.number]
        after = [(n, d) for n, d in dated if n > issue.number]
        if before and after:
            (n1, d1), (n2, d2) = before[-1], after[0]
            days = (d2 - d1).days * (issue.number - n1) / (n2 - n1)
            estimates[issue.pk] = d1 + timedelta(days=round(days))
        elif before:
            n1, d1 = before[-1]
            estimates[issue.pk] = d1 + timedelta(days=round(pace * (issue.number - n1)))
        else:
            n2, d2 = after[0]
            estimates[issue.pk] = d2 - timedelta(days=round(pace * (n2 - issue.number)))
    return estimates
