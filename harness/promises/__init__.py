"""The promise table in code: every testable promise, its checker, and what exercises it.

``PROMISES`` holds one :class:`Promise` per row of ``docs/PROMISES.md``
(which is generated from it: ``python -m stormproof.harness.promises --markdown``);
``coverage(history, config)`` counts, per promise, the completed operations of a
run that exercised it (the run's limits, from ``config``, tell a flood from
traffic within them). ``stormproof.harness.promises.run`` turns those counts into the
``coverage`` list of result.json and marks a checker that had nothing to
judge as "not exercised".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from stormproof.harness.history import History
from stormproof.harness.promises.promise import Promise
from stormproof.harness.promises.table import COUNTERS, GAPS, PROMISES

if TYPE_CHECKING:
    from stormproof.harness.invariants.config import CheckConfig
    from stormproof.harness.invariants.verdict import Verdict

__all__ = ["GAPS", "PROMISES", "Promise", "coverage"]


def coverage(history: History, config: "CheckConfig | None" = None,
             verdicts: "Iterable[Verdict] | None" = None) -> dict[str, int]:
    """Promise id -> how many completed operations of ``history`` exercised it.

    ``config``: the run's limits (None: not known); counters that need them (``counting.ConfigCounter``)
    get it. ``verdicts``: the run's verdicts, when known; a promise with a ``judged_by`` count then counts
    no more than its checker's summary says it judged (nothing, when the checker did not run or did not
    report the count: a task's log lines never read exercised nothing)."""
    counts = {promise.id: (counter(history, config) if getattr(counter, "needs_config", False) else counter(history))
              for promise in PROMISES for counter in (COUNTERS[promise.id],)}
    if verdicts is None:
        return counts
    summaries = {verdict.invariant: verdict.summary for verdict in verdicts}
    for promise in PROMISES:
        if promise.judged_by is not None:
            judged = (summaries.get(promise.invariant) or {}).get(promise.judged_by, 0)
            counts[promise.id] = min(counts[promise.id], int(judged) if isinstance(judged, int) else 0)
    return counts
