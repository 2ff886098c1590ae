"""Real-time reasoning shared by the checkers: when is an effect *certainly* in place?

An acknowledged write took effect somewhere between its invoke and its
completion; an operation that may undo it (a stop, an unassign, a delete)
may take effect anywhere from its invoke to its completion, or at any time
after its invoke if its outcome is unknown. So a write acknowledged at time
``ack`` certainly holds on ``[ack, end)`` where ``end`` is the earliest
invoke among the undoers that could have acted after the write began. Two
such intervals that intersect are a conflict no interleaving can explain;
anything less certain is never flagged.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, NamedTuple

__all__ = ["INF", "Interval", "Undoers", "certain_overlaps", "report_overlaps"]

INF = math.inf


class Undoers:
    """Operations that may end an effect, as (invoke time, completion time or INF).

    ``end_after(begin)`` is the earliest invoke time among undoers whose
    completion is later than ``begin`` (the write's invoke): only those could
    have acted after the write. O(log n) per query.
    """

    __slots__ = ("_completions", "_suffix_min_invoke")

    def __init__(self, spans: Iterable[tuple[float, float]]) -> None:
        ordered = sorted(spans, key=lambda span: span[1])
        self._completions = [span[1] for span in ordered]
        suffix: list[float] = [INF] * (len(ordered) + 1)
        for i in range(len(ordered) - 1, -1, -1):
            suffix[i] = min(ordered[i][0], suffix[i + 1])
        self._suffix_min_invoke = suffix

    def end_after(self, begin: float) -> float:
        return self._suffix_min_invoke[bisect.bisect_right(self._completions, begin)]


NO_UNDOERS = Undoers(())


class Interval(NamedTuple):
    """``[start, end)`` during which ``group`` (a session id, a rep id) certainly held; ``ref`` names its op.

    A named tuple, not a frozen dataclass: one is made per acknowledged start and assign (two per assign),
    and a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (about 4 times
    slower to build). Read-only and compared by value either way."""

    start: float
    end: float
    group: Hashable
    ref: int


def certain_overlaps(intervals: Iterable[Interval]) -> list[tuple[Interval, Interval]]:
    """Pairs (earlier, later) of intervals of different groups that intersect.

    One pair per later interval that conflicts, with the earlier interval of
    another group that reaches furthest. O(n log n): a sweep keeping the two
    furthest-reaching intervals of distinct groups.
    """
    found: list[tuple[Interval, Interval]] = []
    best: Interval | None = None  # furthest end
    second: Interval | None = None  # furthest end among groups other than best's
    for interval in sorted((i for i in intervals if i.start < i.end), key=lambda i: (i.start, i.ref)):
        other = best if best is not None and best.group != interval.group else second
        if other is not None and other.end > interval.start:
            found.append((other, interval))
        if best is None:
            best = interval
        elif interval.group == best.group:
            if interval.end > best.end:
                best = interval
        elif interval.end > best.end:
            second, best = best, interval
        elif second is None or interval.end > second.end:
            second = interval
    return found


def report_overlaps(
    log: Any,
    groups: Mapping[tuple[Any, Any], list[Interval]],
    horizon: float,
    message: Callable[[Any, Interval, Interval], str],
    detail: str,
) -> None:
    """Add a ``history`` violation to ``log`` for every certain overlap within each (tenant, appointment).

    ``message(appointment, earlier, later)`` words it; ``detail`` names the pair of groups in the details.
    """
    for (tenant, appointment), intervals in groups.items():
        if len(intervals) < 2:
            continue
        for earlier, later in certain_overlaps(intervals):
            overlap = min(earlier.end, later.end, max(horizon, later.start)) - later.start
            log.add(
                "history",
                message(appointment, earlier, later),
                (earlier.ref, later.ref),
                badness=float(overlap),
                tenant=tenant,
                appointment_id=appointment,
                **{detail: (earlier.group, later.group)},
            )
