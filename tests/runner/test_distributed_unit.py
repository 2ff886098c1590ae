"""Clock offsets and history shifting of Locust master/worker mode (no Locust, no stack)."""

from __future__ import annotations

import json
import subprocess
import sys

from stormproof.harness.load.distributed import ClockSample, best_offset, shift_lines


def test_importing_the_module_does_not_import_locust() -> None:
    code = "import sys, stormproof.harness.load.distributed; print('locust' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_shortest_round_trip_gives_the_offset_and_its_uncertainty() -> None:
    # worker clock = master clock + 1_000_000; one slow asymmetric ping, one fast one
    slow = ClockSample(t0=0, tw=1_000_000 + 900, t1=1000)       # 900 ns out, 100 back
    fast = ClockSample(t0=5000, tw=1_000_000 + 5010, t1=5020)   # 10 out, 10 back
    offset, uncertainty = best_offset([slow, fast])
    assert offset == 1_000_000 and uncertainty == 10
    assert abs(slow.offset - 1_000_000) <= slow.rtt // 2


def test_shift_moves_only_time_ns() -> None:
    lines = [json.dumps({"index": 0, "time_ns": 100, "f": "x", "wall": 1.5}), ""]
    (shifted,) = shift_lines(lines, -40)
    assert json.loads(shifted) == {"index": 0, "time_ns": 60, "f": "x", "wall": 1.5}


def test_worker_times_land_on_the_master_timeline() -> None:
    # One instant: master monotonic 10_000, worker monotonic 73_000 (offset 63_000).
    origin_m, origin_w, offset = 4_000, 50_000, 63_000
    worker_time = 73_000 - origin_w               # what the worker recorded
    shift = origin_w - offset - origin_m          # what the master applies
    assert worker_time + shift == 10_000 - origin_m
