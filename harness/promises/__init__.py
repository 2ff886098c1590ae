"""The promise table in code: every testable promise, its checker, and what exercises it.

``PROMISES`` holds one :class:`Promise` per row of ``docs/PROMISES.md``
(which is generated from it: ``python -m stormproof.harness.promises --markdown``);
``coverage(history)`` counts, per promise, the completed operations of a run
that exercised it. ``stormproof.harness.promises.run`` turns those counts into the
``coverage`` list of result.json and marks a checker that had nothing to
judge as "not exercised".
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.promises.promise import Promise
from stormproof.harness.promises.table import COUNTERS, GAPS, PROMISES

__all__ = ["GAPS", "PROMISES", "Promise", "coverage"]


def coverage(history: History) -> dict[str, int]:
    """Promise id -> how many completed operations of ``history`` exercised it."""
    return {promise.id: COUNTERS[promise.id](history) for promise in PROMISES}
