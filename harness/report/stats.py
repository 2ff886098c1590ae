"""Numbers a report shows, computed from a History: load, errors, latency, fault windows.

The definitions match the SLO checkers so that a report never contradicts
its verdicts: an *error* is a client operation whose completion is ``info``,
carries a 5xx status, or never came (as in ``slo-error-rate``); *latency* is
``completion.time_ns - invoke.time_ns`` of ``ok`` client operations, with
nearest-rank percentiles (as in ``slo-latency-p95``). Nemesis ops are not
load and are left out of both. Times are seconds since the run's origin
(the recorder's ``time_ns`` zero), so charts, fault windows and evidence
share one clock.

Charts get time buckets of 1 s; a long run gets wider buckets (whole
seconds) so that a chart has at most ``max_points`` points. Percentiles of a
wide bucket are computed from its raw latencies, never averaged from narrow
ones, so downsampling never invents a latency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stormproof.harness.history import History
from stormproof.harness.history.gcpause import paused_gc
from stormproof.harness.history.vocabulary import FAULT, NEMESIS

__all__ = [
    "ALL_OPS",
    "MAX_POINTS",
    "REFUSAL_STATUSES",
    "Series",
    "fault_windows",
    "nearest_rank",
    "summarise_history",
    "time_series",
]

#: The key of the all-operations latency series.
ALL_OPS = "*"

#: Default cap on points per chart line.
MAX_POINTS = 600

#: ``fail`` answers a storm provokes on purpose and the API promises (docs/API.md): 409 a conflict
#: (an active session, a key still in flight), 422 a key reused with another payload, 429 a rate
#: limit. They are the hardening doing its job, not errors; the report shows them apart.
REFUSAL_STATUSES: frozenset[int] = frozenset((409, 422, 429))

_NS = 1_000_000_000
_PERCENTILES = (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99))


def nearest_rank(ordered: Sequence[int], q: float) -> int:
    """The q-quantile (0 < q <= 1) of an ascending, non-empty sequence, by nearest rank."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _latency_stats(ordered: list[int]) -> dict[str, float | None]:
    if not ordered:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    out: dict[str, float | None] = {name: nearest_rank(ordered, q) / 1e6 for name, q in _PERCENTILES}
    out["max_ms"] = ordered[-1] / 1e6
    out["mean_ms"] = sum(ordered) / len(ordered) / 1e6
    return out


def _is_client(process: str, f: str) -> bool:
    return process != NEMESIS and f != FAULT


def summarise_history(history: History) -> dict[str, Any]:
    """The ``stats`` field of result.json.

    ``requests`` counts client invocations; ``by_f[f]`` has ``count``, ``ok``,
    ``fail``, ``info`` (a missing completion counts as info), ``errors``,
    ``fail_by_status`` (the fails by HTTP status, as strings: the report splits
    expected refusals from other 4xx with it) and latency (``p50_ms`` ...
    ``mean_ms``, None without ok ops). ``duration_s`` is the span of the
    history, ``rps`` requests per second over it.
    """
    with paused_gc():  # many small lists while a large history is alive (see stormproof.harness.history.gcpause)
        return _summarise(history)


def _summarise(history: History) -> dict[str, Any]:
    counts: dict[str, list[int]] = {}  # f -> [count, ok, fail, info, errors]
    latencies: dict[str, list[int]] = {}
    fails: dict[str, dict[int | None, int]] = {}
    for invoke, completion in history.pairs():
        f = invoke.f
        if not _is_client(invoke.process, f):
            continue
        row = counts.get(f)
        if row is None:
            row = counts[f] = [0, 0, 0, 0, 0]
            latencies[f] = []
        row[0] += 1
        if completion is None:
            row[3] += 1
            row[4] += 1
            continue
        kind = completion.type
        if kind == "ok":
            row[1] += 1
            latencies[f].append(completion.time_ns - invoke.time_ns)
        elif kind == "fail":
            row[2] += 1
            by_status = fails.get(f)
            if by_status is None:
                by_status = fails[f] = {}
            by_status[completion.status] = by_status.get(completion.status, 0) + 1
        else:
            row[3] += 1
        if kind == "info" or (completion.status or 0) >= 500:
            row[4] += 1

    by_f: dict[str, dict[str, Any]] = {}
    everything: list[int] = []
    for f in sorted(counts):
        count, ok, fail, info, errors = counts[f]
        ordered = sorted(latencies[f])
        everything.extend(ordered)
        ordered_fails = sorted(fails.get(f, {}).items(), key=lambda item: (item[0] is None, item[0] or 0))
        by_status = {("none" if status is None else str(status)): n for status, n in ordered_fails}
        by_f[f] = {"count": count, "ok": ok, "fail": fail, "info": info, "errors": errors,
                   "fail_by_status": by_status, **_latency_stats(ordered)}
    everything.sort()
    requests = sum(row[0] for row in counts.values())
    errors = sum(row[4] for row in counts.values())
    duration = (history[-1].time_ns - history[0].time_ns) / _NS if len(history) else 0.0
    overall = _latency_stats(everything)
    return {
        "requests": requests,
        "duration_s": duration,
        "rps": requests / duration if duration > 0 else 0.0,
        "errors": errors,
        "error_rate": errors / requests if requests else 0.0,
        "p50_ms": overall["p50_ms"],
        "p95_ms": overall["p95_ms"],
        "p99_ms": overall["p99_ms"],
        "by_f": by_f,
    }


def fault_windows(history: History) -> list[dict[str, Any]]:
    """The ``faults`` field of result.json: one window per injected fault, by start time.

    A ``start`` opens a window for its (fault, target); the next ``stop`` of
    the same pair closes the oldest open one; a final heal (target ``"*"``
    or ``params.final``) closes every open window of its fault. A window
    never closed has ``stop_s`` None. ``outcome`` is the injection's
    completion (``info``: it may have applied only partly).
    """
    open_windows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    windows: list[dict[str, Any]] = []
    for invoke in history.faults():
        args = invoke.args
        fault = str(args.get("fault", "?"))
        target = str(args.get("target", "?"))
        params = args.get("params")
        params = dict(params) if isinstance(params, Mapping) else {}
        at = invoke.time_ns / _NS
        phase = args.get("phase")
        if phase == "start":
            completion = history.completion(invoke)
            window = {"fault": fault, "target": target, "params": _plain(params), "start_s": at, "stop_s": None,
                      "outcome": "info" if completion is None else completion.type}
            windows.append(window)
            open_windows.setdefault((fault, target), []).append(window)
        elif phase == "stop":
            if target == "*" or params.get("final"):
                for (name, _), still_open in open_windows.items():
                    if name == fault:
                        for window in still_open:
                            window["stop_s"] = at
                        still_open.clear()
            else:
                still_open = open_windows.get((fault, target))
                if still_open:
                    still_open.pop(0)["stop_s"] = at
    windows.sort(key=lambda window: window["start_s"])
    return windows


def _plain(value: Any) -> Any:
    """A frozen history value as plain JSON data (sets become sorted lists)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted((_plain(item) for item in value), key=repr)
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class Series:
    """Time-bucketed load and latency, ready to chart.

    Bucket ``i`` covers ``[i * bucket_s, (i + 1) * bucket_s)`` seconds;
    ``t`` holds each bucket's start. Rates are per second; ``refused_per_s``
    counts the fails with a ``REFUSAL_STATUSES`` status. ``latency[f]``
    maps ``"p50"``, ``"p95"``, ``"p99"`` to one value (ms) per bucket, None
    where the bucket has no ok completion of ``f``; ``ALL_OPS`` is every
    operation together. Operations and errors are placed by completion time
    (a never-completed op by its invoke time).
    """

    bucket_s: float
    t: tuple[float, ...]
    rps: tuple[float, ...]
    errors_per_s: tuple[float, ...]
    latency: Mapping[str, Mapping[str, tuple[float | None, ...]]]
    end_s: float
    refused_per_s: tuple[float, ...] = ()


def time_series(history: History, *, max_points: int = MAX_POINTS) -> Series:
    """Bucket the history's client operations for the charts (see ``Series``)."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    with paused_gc():  # 7x faster on a 1M-op history: no collections rescanning it
        return _bucket(history, max_points)


def _bucket(history: History, max_points: int) -> Series:
    end_ns = history[-1].time_ns if len(history) else 0
    end_ns = max(end_ns, 1)
    width_s = max(1, math.ceil(end_ns / _NS / max_points))
    while math.ceil(end_ns / (width_s * _NS)) > max_points:
        width_s += 1
    width = width_s * _NS
    buckets = max(1, math.ceil(end_ns / width))
    done = [0] * buckets
    errors = [0] * buckets
    refused = [0] * buckets
    refusal = REFUSAL_STATUSES
    by_bucket: dict[str, list[list[int] | None]] = {}
    last = buckets - 1
    for invoke, completion in history.pairs():
        f = invoke.f
        if not _is_client(invoke.process, f):
            continue
        if completion is None:
            errors[min(last, max(0, invoke.time_ns // width))] += 1
            continue
        bucket = min(last, max(0, completion.time_ns // width))
        done[bucket] += 1
        kind = completion.type
        if kind == "ok":
            slots = by_bucket.get(f)
            if slots is None:
                slots = by_bucket[f] = [None] * buckets
            cell = slots[bucket]
            if cell is None:
                slots[bucket] = [completion.time_ns - invoke.time_ns]
            else:
                cell.append(completion.time_ns - invoke.time_ns)
        elif kind == "fail" and completion.status in refusal:
            refused[bucket] += 1
        if kind == "info" or (completion.status or 0) >= 500:
            errors[bucket] += 1

    latency: dict[str, dict[str, tuple[float | None, ...]]] = {}
    merged: list[list[int]] = [[] for _ in range(buckets)]
    for f in sorted(by_bucket):
        slots = by_bucket[f]
        for i, cell in enumerate(slots):
            if cell is not None:
                cell.sort()
                merged[i].extend(cell)
        latency[f] = _percentile_lines(slots)
    if by_bucket:
        latency[ALL_OPS] = _percentile_lines([sorted(cell) if cell else None for cell in merged])
    return Series(
        bucket_s=float(width_s),
        t=tuple(float(i * width_s) for i in range(buckets)),
        rps=tuple(count / width_s for count in done),
        errors_per_s=tuple(count / width_s for count in errors),
        latency=latency,
        end_s=end_ns / _NS,
        refused_per_s=tuple(count / width_s for count in refused),
    )


def _percentile_lines(slots: list[list[int] | None]) -> dict[str, tuple[float | None, ...]]:
    """p50/p95/p99 per bucket from sorted latency lists (None for empty buckets)."""
    lines: dict[str, tuple[float | None, ...]] = {}
    for name, q in _PERCENTILES:
        lines[name[:3]] = tuple(None if not cell else nearest_rank(cell, q) / 1e6 for cell in slots)
    return lines
