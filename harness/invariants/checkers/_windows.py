"""Crowded windows of sorted event times: the count-over-a-bound walk the limit rules share.

A limiter that keeps to ``rate`` a second after ``burst`` lets at most ``rate x length + burst`` events
through in any window of ``length`` seconds; the windows worth looking at open at an event.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

__all__ = ["busiest", "crowded"]


def crowded(times: Sequence[float], length: float, bound: float) -> Iterator[tuple[int, int]]:
    """(first index, count) of each window of ``length`` opening at an event of ``times`` (sorted) that
    holds more than ``bound`` of them; the walk goes on after the window's last event (one report each)."""
    i = 0
    while i < len(times):
        end = bisect_left(times, times[i] + length, i) - 1
        count = end - i + 1
        if count <= bound:
            i += 1
            continue
        yield i, count
        i = end + 1


def busiest(times: Sequence[float], length: float) -> int:
    """The most events of ``times`` (sorted) within one window of ``length``."""
    return max((bisect_left(times, at + length, i) - i for i, at in enumerate(times)), default=0)
