"""The parts of the system that /healthz reports on besides the database and the broker.

An app registers a check for each part it owns (from its AppConfig.ready), so that the
project package runs them without knowing any app's rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Health:
    """One part's answer: whether it is ok, and what only staff and token holders see."""

    ok: bool
    details: dict[str, object] = field(default_factory=dict)


# Called with whether the caller may see details, so that a check can skip work that
# only its details need.
Check = Callable[[bool], Health]
_checks: dict[str, Check] = {}


def register(name: str, check: Check) -> None:
    """Report `check` under `name`; registering a name again replaces its check."""
    _checks[name] = check


def registered() -> dict[str, Check]:
    return dict(_checks)
