"""Bounded repetition: races are probabilistic, so a replay's answer is a rate, not a yes.

``measure`` replays a case ``tries`` times on one stack and counts the
attempts whose checker said ``invalid``. ``stop_early`` lets shrinking stop
as soon as the outcome is decided (enough failures to reach the rate, or too
many passes to reach it), which is what keeps delta debugging inside its
time budget.

With ``kind`` (the run's violation's sub-type, ``details["type"]``), only an
attempt that shows a violation of that kind counts: another kind of the same
invariant is another bug, and a shrinker that accepted it would end on a case
that no longer shows the run's (webhook-signature's shrank from an applied
forgery to a forgery answered other than 401).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .case import Case
from .replay import Replayer

__all__ = ["Rate", "measure"]


@dataclass(frozen=True)
class Rate:
    reproduced: int
    tries: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.reproduced / self.tries if self.tries else 0.0

    def __str__(self) -> str:
        return f"{self.reproduced}/{self.tries}"


def measure(replayer: Replayer, case: Case, tries: int, *, need: float | None = None, kind: str | None = None) -> Rate:
    """Replay ``case`` up to ``tries`` times; with ``need`` (a rate), stop once it is reached or out of reach;
    with ``kind``, count only attempts that show a violation of that kind."""
    reproduced = done = 0
    seconds = 0.0
    wanted = math.ceil(need * tries) if need is not None else None
    for _ in range(tries):
        attempt = replayer.attempt(case)
        done += 1
        seconds += attempt.seconds
        reproduced += attempt.reproduced and (kind is None or kind in attempt.kinds)
        if wanted is not None and (reproduced >= wanted or reproduced + (tries - done) < wanted):
            break
    return Rate(reproduced, done, seconds)
