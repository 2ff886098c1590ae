"""What one run says about its cell: caught or escaped, passed or failed, and when it first broke.

A weakened try counts as caught only when the run itself went through (no
run error) and every expected invariant came out ``invalid``. ``valid`` is
an escape, and so is ``unknown``: a checker that could not decide has not
shown the bug, and a run that errored proves nothing about the checks.

The time to first violation is read from the run's own evidence: each
violation cites history ops, and it became visible when the last of its
cited calls completed; a violation about one second of the run (the rate
limit's) when that second ended. The first violation is the earliest of the
kept violations and of the first/worst/last of each type. A violation about
the final state (a result applied twice, found in the tables) has no time;
when only those exist, the time is unknown (None, shown as "final state"),
not guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from stormproof.harness.history import History
from stormproof.harness.invariants.verdict import Verdict, Violation
from stormproof.harness.report.result import RunResult

__all__ = ["first_violation_s", "judge_all_on", "judge_weakened"]


def judge_weakened(result: RunResult, expect: Sequence[str], promises: Sequence[str] = ()) -> tuple[bool, str]:
    """(caught, reason) for a weakened run expected to break every invariant in ``expect``.

    ``promises``: the promise table's rows the cell comes from. Each must have been exercised in the run
    (its coverage count above 0): an invariant made invalid by another promise's violations shows nothing
    about a promise no operation put at risk (noisy-tenant's task-limit row was "caught" so, by the API
    limit's violations, while its load sent no call at all).
    """
    if result.error is not None:
        return False, f"the run failed: {result.error}"
    statuses = {v.invariant: v for v in result.verdicts}
    missed = []
    for invariant in expect:
        verdict = statuses.get(invariant)
        if verdict is None:
            missed.append(f"{invariant} was not checked")
        elif verdict.status != "invalid":
            why = f" ({verdict.error})" if verdict.error else ""
            missed.append(f"{invariant} was {verdict.status}{why}")
    counted = {str(entry.get("promise")): entry.get("count") for entry in result.coverage}
    idle = [p for p in promises if p in counted and not counted[p]]
    if idle:
        missed.append(f"not exercised in this run: {', '.join(idle)} (another promise's violations do not show "
                      "these)")
    if missed:
        return False, "; ".join(missed)
    counts = ", ".join(f"{i}: {_count(statuses[i])} violation(s)" for i in expect)
    return True, counts


def judge_all_on(result: RunResult, slos: Sequence[str] = ()) -> tuple[bool, str]:
    """(passed, reason) for a run with every fix on: the run's verdict must be pass.

    SLOs do not decide a run's verdict (a slow machine misses them with a correct
    app), so they are judged here only where a cell of the same scenario expects
    a weakening to break them (``slos``): that weakening proves nothing if the
    fixed app breaks the same SLO too.
    """
    statuses = {v.invariant: v.status for v in result.verdicts}
    missed = [f"{name} {statuses.get(name, 'not checked')}" for name in slos if statuses.get(name) != "valid"]
    if result.verdict == "pass" and not missed:
        return True, "pass"
    if result.error is not None:
        return False, f"{result.verdict}: {result.error}"
    bad = [f"{v.invariant} {v.status}" for v in result.verdicts if v.kind != "slo" and v.status != "valid"]
    return False, f"{result.verdict}: {', '.join(bad + missed) or 'no verdict'}"


def first_violation_s(result: RunResult, history: History, invariants: Iterable[str]) -> float | None:
    """Seconds from the start of the load to the first violation of ``invariants``, or None."""
    wanted = set(invariants)
    times = []
    for verdict in result.verdicts:
        if verdict.invariant not in wanted:
            continue
        for ops in _cited(verdict.violations, verdict.summary.get("by_type")):
            moment = _visible_at(history, ops)
            if moment is not None:
                times.append(moment / 1e9)
        times += [t for t in map(_window_end, verdict.violations) if t is not None]
    return min(times) if times else None


def _window_end(violation: Violation) -> float | None:
    """A violation about a window of the run (the rate-limit checker's ``second``) is visible when it closes."""
    second = violation.details.get("second")
    if isinstance(second, (int, float)) and not isinstance(second, bool):
        return float(second) + 1.0
    return None


def _count(verdict: Verdict) -> int:
    counted = verdict.summary.get("violations")
    return counted if isinstance(counted, int) and not isinstance(counted, bool) else len(verdict.violations)


def _cited(violations: Sequence[Violation], by_type: object) -> list[Sequence[int]]:
    """The op lists of the kept violations and of each type's first, worst and last."""
    cited: list[Sequence[int]] = [v.ops for v in violations]
    for info in by_type.values() if isinstance(by_type, Mapping) else ():
        for which in ("first", "worst", "last"):
            brief = info.get(which) if isinstance(info, Mapping) else None
            ops = brief.get("ops") if isinstance(brief, Mapping) else None
            if isinstance(ops, (list, tuple)):
                cited.append([i for i in ops if isinstance(i, int) and not isinstance(i, bool)])
    return cited


def _visible_at(history: History, ops: Sequence[int]) -> int | None:
    """When a violation citing ``ops`` became visible: the latest completion (or op) among them, in ns."""
    latest = None
    for index in ops:
        if not 0 <= index < len(history):
            continue
        op = history[index]
        if op.type == "invoke":
            op = history.completion(op) or op
        latest = op.time_ns if latest is None else max(latest, op.time_ns)
    return latest
