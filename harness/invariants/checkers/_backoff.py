"""Retry timing, judged for dead-letter-accounting (plan C1: exponential backoff with full jitter).

The promise: after a task's n-th failure-driven retry is decided (n = 0 for
the first), it waits ``uniform(0, min(cap, base * 2**n))``, never a fixed
delay. The ledger's ``task_records.tries`` (one clock, PostgreSQL's) gives,
per task, when each try began and, when a try ended with a retry, the wait it
chose and how many tries had failed.

The wait a task chose and the time it actually waited differ by scheduling:
the outbox relay's interval, a busy or paused worker. The promise governs the
first; the second is only ever longer. So:

- ``backoff-over-bound``: a chosen wait above ``min(cap, base * 2**n)``;
- ``retried-early``: the next try began before the chosen wait was over
  (beyond ``EARLY_SLACK_S``): the wait recorded is not the wait kept;
- ``fixed-delay``: at one retry level n with at least ``MIN_SAMPLES`` waits,
  every wait lies within ``FIXED_SPREAD`` of the level's bound of each other.
  Full jitter spreads waits over the whole range: the chance that 12 uniform
  draws fall within a tenth of it is about 1e-10, so this never fires on a
  correct app, however slow the machine (the chosen waits carry no scheduling
  noise), and it fires on any constant delay.

Retries floored by a rate limit's Retry-After (``throttled``) and the next
polls of a pending job (``failure`` null) are not backoff and are not judged.
The scheduling lag (actual minus chosen wait) is reported, not judged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from statistics import median
from typing import Any

from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Row

__all__ = ["check_backoff", "EARLY_SLACK_S", "FIXED_SPREAD", "MIN_SAMPLES"]

#: How much sooner than its chosen wait a try may begin (timestamps of two transactions, one clock).
EARLY_SLACK_S = 0.25
#: Waits at one level spread over less than this share of the level's bound look fixed.
FIXED_SPREAD = 0.1
#: Waits at one level needed before their spread is judged.
MIN_SAMPLES = 12


def _ceiling(failure: int, base_s: float, cap_s: float) -> float:
    return min(cap_s, base_s * 2 ** max(0, failure - 1))


def check_backoff(log: ViolationLog, records: Iterable[Row], backoff_ms: tuple[int, int],
                  cite: Callable[[Iterable[Row]], tuple[int, ...]] = lambda rows: ()) -> dict[str, Any]:
    """Judge every failure-driven retry's wait; returns the summary (retries judged, per level, scheduling lag).
    ``cite`` names the requests behind a task row (``requests_behind_tasks``), for ``stormproof reproduce``."""
    base_s, cap_s = backoff_ms[0] / 1000, backoff_ms[1] / 1000
    levels: dict[int, list[float]] = defaultdict(list)
    lags: list[float] = []
    kept = 0  # retries whose next try began and whose wait was long enough for an early start to show
    for record in records:
        tries = record.get("tries")
        if tries is None:
            log.cannot("task_records.tries not in snapshot: retry timing not judged")
            return {}
        for event, following in zip(tries, [*tries[1:], None]):
            if event.get("event") != "retry":
                continue
            wait = float(event["wait_s"])
            if following is not None and following.get("event") == "start":
                waited = float(following["at"]) - float(event["at"])
                if waited < wait - EARLY_SLACK_S:
                    log.add("retried-early", f"task {record.get('name')} {record.get('task_id')} chose to wait "
                            f"{wait:.3f} s but ran again after {waited:.3f} s", cite((record,)), badness=wait - waited,
                            task_id=record.get("task_id"), wait_s=wait, waited_s=round(waited, 4))
                lags.append(waited - wait)
                kept += wait > EARLY_SLACK_S
            failure = event.get("failure")
            if failure is None or event.get("throttled"):
                continue
            ceiling = _ceiling(int(failure), base_s, cap_s)
            levels[int(failure) - 1].append(wait)
            if wait > ceiling + 1e-6:
                log.add("backoff-over-bound", f"task {record.get('name')} {record.get('task_id')} waited {wait:.3f} s "
                        f"after failure {failure}, above min(cap, base * 2**{int(failure) - 1}) = {ceiling:.3f} s",
                        cite((record,)), badness=wait - ceiling, task_id=record.get("task_id"), wait_s=wait,
                        bound_s=ceiling)
    for n, waits in sorted(levels.items()):
        ceiling = _ceiling(n + 1, base_s, cap_s)
        spread = max(waits) - min(waits)
        if len(waits) >= MIN_SAMPLES and spread < FIXED_SPREAD * ceiling:
            log.add("fixed-delay", f"all {len(waits)} retries at level {n} waited {min(waits):.3f} to "
                    f"{max(waits):.3f} s: a fixed delay, where full jitter spreads them over 0 to {ceiling:.3f} s",
                    badness=float(len(waits)), level=n, retries=len(waits), spread_s=round(spread, 4),
                    bound_s=ceiling)
    return {
        "retries_judged": sum(len(w) for w in levels.values()),
        "waits_judged": kept,
        "by_level": {n: {"retries": len(w), "min_s": round(min(w), 4), "max_s": round(max(w), 4),
                         "bound_s": _ceiling(n + 1, base_s, cap_s)} for n, w in sorted(levels.items())},
        "scheduling_lag_s": None if not lags else {"median": round(median(lags), 3), "max": round(max(lags), 3)},
    }
