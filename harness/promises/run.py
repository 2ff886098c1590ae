"""Promise coverage of one run, and "not exercised" instead of a vacuous pass.

A scenario declares the invariants it puts at risk. For each promise the run
reports how many completed operations exercised it; a promise nobody
exercised is listed "not exercised" and fails nothing by itself. But a
declared invariant none of whose promises was exercised had nothing to
judge: its ``valid`` would be a pass by default, so it becomes ``unknown``
with an error starting "not exercised: " (an ``invalid`` verdict stays: it
found something to judge).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal

from stormproof.harness.history import History
from stormproof.harness.invariants.verdict import Verdict
from stormproof.harness.promises import PROMISES, coverage

__all__ = ["NOT_EXERCISED", "CoverageStatus", "coverage_entries", "mark_not_exercised", "run_coverage"]

CoverageStatus = Literal["exercised", "not exercised"]
NOT_EXERCISED = "not exercised: "


def coverage_entries(counts: Mapping[str, int], judged: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The ``coverage`` list of result.json: one entry per promise, in table order.

    ``judged`` names the invariants the run checked; ``judged`` in an entry
    says whether this promise's checker ran at all.
    """
    checked = set(judged)
    return [
        {
            "promise": promise.id,
            "plan_item": promise.plan_item,
            "invariant": promise.invariant,
            "count": int(counts.get(promise.id, 0)),
            "status": "exercised" if counts.get(promise.id, 0) > 0 else "not exercised",
            "judged": promise.invariant in checked,
        }
        for promise in PROMISES
    ]


def mark_not_exercised(verdicts: Iterable[Verdict], counts: Mapping[str, int],
                       exempt: Iterable[str] = ()) -> list[Verdict]:
    """``valid`` verdicts whose invariant's promises were all unexercised become ``unknown``.

    Invariants without a promise in the table are left as they are, and so are those in ``exempt``: checks
    the run added that its scenario did not ask for (a run of idempotency probes sends no read for
    reads-current to judge; it did not do less than its scenario asked). Their promises still show "not
    exercised" in the coverage list.
    """
    skipped = set(exempt)
    by_invariant: dict[str, list[str]] = defaultdict(list)
    for promise in PROMISES:
        by_invariant[promise.invariant].append(promise.id)
    marked = []
    for verdict in verdicts:
        promises = by_invariant.get(verdict.invariant)
        if verdict.status == "valid" and promises and verdict.invariant not in skipped \
                and not any(counts.get(p, 0) for p in promises):
            shown = ", ".join(promises[:4]) + (f" and {len(promises) - 4} more" if len(promises) > 4 else "")
            verdict = replace(
                verdict, status="unknown",
                error=f"{NOT_EXERCISED}no operation of this run exercised {shown}",
            )
        marked.append(verdict)
    return marked


def run_coverage(history: History | None, verdicts: Iterable[Verdict], config: Any = None,
                 asked: Iterable[str] = ()) -> list[Verdict]:
    """The runner's hook: the verdicts, with those that judged nothing marked "not exercised".

    ``config``: the run's ``CheckConfig`` (its limits tell a flood from traffic within them). ``asked``: the
    scenario's own invariants; a check every run adds is held to "not exercised" only if the scenario asked
    for it too."""
    verdicts = list(verdicts)
    if history is None:
        return verdicts
    from stormproof.harness.plan.run_plan import ALWAYS_CHECKS  # the plan imports the table: not at load time

    exempt = set(ALWAYS_CHECKS) - set(asked)
    return mark_not_exercised(verdicts, coverage(history, config, verdicts), exempt=exempt)
