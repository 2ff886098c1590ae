"""What the probe checkers share: when a server error is excused, and how an answer is classed.

A probe's answer is judged against a promise. Two answers are not judgeable
and are counted instead: no answer (``info``: a timeout or a reset), 429
(the tenant's rate limit answered before the promise could) and a 503 with a
Retry-After (load shed: come back later). A 5xx is a violation, except while a
fault was active (the nemesis's own ops say when) or in the ``AFTER_FAULT_S``
after it: an injected outage may answer 5xx, and a 5xx leaves the outcome
unknown. The same two excuses as server-errors-explained's, so that no probe
checker flags a 5xx that rule lays to a fault or to shedding (a pooled
connection the fault broke is found broken only when next used: on a slow
machine, a second or more after the fault heals).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import FAULT, NEMESIS
from stormproof.harness.invariants.timeline import INF

__all__ = ["AFTER_FAULT_S", "FaultWindows", "answer_class"]

#: How long after a fault stops a 5xx is still laid to it: a pooled connection the fault broke is only
#: found broken when it is next used.
AFTER_FAULT_S = 2.0
_AFTER_FAULT_NS = int(AFTER_FAULT_S * 1e9)


class FaultWindows:
    """The times some fault was active: from each ``start`` to its ``stop`` (or the end of the run)."""

    def __init__(self, history: History, only: Callable[[object, object], bool] | None = None) -> None:
        """Every fault's windows, or only those whose (fault, target) ``only`` accepts."""
        open_at: dict[tuple[object, object], int] = {}
        spans: list[tuple[float, float]] = []
        done = sorted((c for i, c in history.pairs_of(FAULT) if c is not None), key=lambda op: op.index)
        for op in done:  # the fault completions in history order, without a pass over every op
            if op.process != NEMESIS:
                continue
            key = (op.args.get("fault"), op.args.get("target"))
            if only is not None and not only(*key):
                continue
            if op.args.get("phase") == "start":
                open_at.setdefault(key, op.time_ns)
            elif op.args.get("phase") == "stop" and key in open_at:
                spans.append((open_at.pop(key), op.time_ns))
        spans.extend((start, INF) for start in open_at.values())
        spans.sort()
        self._starts = [s for s, _ in spans]
        self._spans = spans

    def __len__(self) -> int:
        return len(self._spans)

    def may_explain(self, invoked_ns: float, answered_ns: float) -> bool:
        """Whether a fault may explain a failed request sent and answered then: one was active during it or
        ended at most ``AFTER_FAULT_S`` before it was sent (a broken pooled connection is found when next used)."""
        return self.overlaps(invoked_ns - _AFTER_FAULT_NS, answered_ns)

    def overlaps(self, start: float, end: float) -> bool:
        """Whether some fault was active at some time in [start, end]."""
        upto = bisect_left(self._starts, end + 1)
        return any(stop >= start for _, stop in self._spans[:upto])


def answer_class(invoke: Op, completion: Op, faults: FaultWindows) -> str:
    """``none`` (no answer), ``limited`` (429, or 503 with a Retry-After), ``excused`` (5xx under a fault or in
    the AFTER_FAULT_S after it), ``5xx``, ``2xx`` or ``4xx``."""
    status = completion.status
    if completion.type == "info" and not status:
        return "none"
    if status is None or status == 0:
        return "none"
    if status == 429 or status == 503 and completion.result.get("retry_after"):
        return "limited"
    if status >= 500:
        return "excused" if faults.may_explain(invoke.time_ns, completion.time_ns) else "5xx"
    return "2xx" if 200 <= status < 300 else "4xx"
