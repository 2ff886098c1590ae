"""Benchmark history recording against a bare loop building the same data, in one run.

Records N invoke+complete pairs (default 1,000,000) through ``HistoryRecorder``
into a temporary file, and, as the baseline, runs the same loop that only
builds the argument and result dicts. Prints pairs/s and ops/s side by side,
the per-op overhead, the file size and the time to load it back.

    .venv/bin/python bench/bench_history.py [--pairs N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stormproof.harness.history import HistoryRecorder, load_history  # noqa: E402


def baseline(pairs: int) -> float:
    sink = []
    started = time.perf_counter()
    for i in range(pairs):
        args = {"appointment_id": f"a{i % 5000}", "idempotency_key": f"k{i}", "payload_fp": "fp"}
        result = {"id": f"s{i}", "replayed": False, "body_sha256": "0" * 64, "company_ids_seen": {"c1"}}
        sink.append((args, result))
        if len(sink) >= 8192:
            sink.clear()
    return time.perf_counter() - started


def recorded(pairs: int, path: str) -> float:
    started = time.perf_counter()
    with HistoryRecorder(path) as recorder:
        invoke, complete = recorder.invoke, recorder.complete
        for i in range(pairs):
            args = {"appointment_id": f"a{i % 5000}", "idempotency_key": f"k{i}", "payload_fp": "fp"}
            op = invoke(f"user-{i % 50}", "session.start", tenant="c1", args=args)
            result = {"id": f"s{i}", "replayed": False, "body_sha256": "0" * 64, "company_ids_seen": {"c1"}}
            complete(op, status=201, result=result)
    return time.perf_counter() - started  # includes the final flush and close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    pairs = parser.parse_args().pairs
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "history.jsonl")
        base = baseline(pairs)
        rec = recorded(pairs, path)
        size = os.path.getsize(path)
        started = time.perf_counter()
        history = load_history(path)
        load = time.perf_counter() - started
        assert len(history) == 2 * pairs
    print(f"{'':34}{'seconds':>10}{'pairs/s':>14}{'ops/s':>14}")
    print(f"{'baseline: build the same dicts':34}{base:>10.2f}{pairs / base:>14,.0f}{2 * pairs / base:>14,.0f}")
    print(f"{'HistoryRecorder to file':34}{rec:>10.2f}{pairs / rec:>14,.0f}{2 * pairs / rec:>14,.0f}")
    print(f"recording overhead per op: {(rec - base) / (2 * pairs) * 1e6:.2f} us; "
          f"file {size / 1e6:.0f} MB ({size / (2 * pairs):.0f} B/op)")
    print(f"load_history: {load:.2f} s ({2 * pairs / load:,.0f} ops/s)")


if __name__ == "__main__":
    main()
