"""slo-latency-p95 (SLO, plan E5): p95 latency of successful operations, per operation and overall.

Latency is completion ``time_ns`` minus invoke ``time_ns`` of ``ok`` client
ops (failed and unknown outcomes are the error-rate SLO's business). The p95
is nearest-rank. Thresholds: ``CheckConfig.latency_p95_ms`` overall and for
each operation unless ``latency_p95_ms_by_f`` names it.
"""

from __future__ import annotations

import heapq
import math

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import NEMESIS
from stormproof.harness.invariants.checkers._answers import answers
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_slo_latency", "nearest_rank"]

NAME = "slo-latency-p95"

#: Slowest ops listed in a violation.
_LISTED = 10


def nearest_rank(ordered: list[int], q: float) -> int:
    """The q-quantile (0 < q <= 1) of an ascending list, by nearest rank."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@checker(NAME, "slo")
def check_slo_latency(history: History, snapshot: Snapshot) -> Verdict:
    """p95 of ok latency <= latency_p95_ms, per operation and overall."""
    config = snapshot.config
    log = ViolationLog(NAME, "slo", config)
    latencies = answers(history).latencies
    if not latencies:
        log.cannot("no successful client operations in the history")
        return log.verdict()

    stats: dict[str, dict[str, float]] = {}
    everything: list[int] = []
    for f in sorted(latencies):
        ordered = sorted(latencies[f])
        everything.extend(ordered)
        stats[f] = _stats(ordered)
    everything.sort()
    stats["*"] = _stats(everything)

    for f, row in stats.items():
        threshold = config.latency_threshold_ms(None if f == "*" else f)
        if row["p95_ms"] > threshold:
            log.add("latency", f"p95 latency of {'all ops' if f == '*' else f} is {row['p95_ms']:.1f} ms, above "
                    f"{threshold:g} ms", _slowest(history, None if f == "*" else f),
                    badness=row["p95_ms"] / threshold, f=f, p95_ms=row["p95_ms"], threshold_ms=threshold)
    return log.verdict(latency_ms=stats)


def _stats(ordered: list[int]) -> dict[str, float]:
    return {
        "count": len(ordered),
        "p50_ms": nearest_rank(ordered, 0.50) / 1e6,
        "p95_ms": nearest_rank(ordered, 0.95) / 1e6,
        "p99_ms": nearest_rank(ordered, 0.99) / 1e6,
        "max_ms": ordered[-1] / 1e6,
    }


def _slowest(history: History, f: str | None) -> list[int]:
    pairs = history.pairs() if f is None else history.pairs_of(f)
    timed = ((c.time_ns - i.time_ns, c.index) for i, c in pairs
             if c is not None and c.type == "ok" and i.process != NEMESIS)
    return [index for _, index in heapq.nlargest(_LISTED, timed)]
