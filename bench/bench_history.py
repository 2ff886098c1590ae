"""Benchmark loading a history file and the memory a loaded, checked history holds, against a baseline tree.

Writes one realistic history file of N ops (default 1,000,000: the
generator of ``bench_checkers.py``, every completion with a 64-hex
``body_sha256``, ``replayed`` and ``company_ids_seen`` as the load client
records them), then, in fresh processes taking turns (baseline, this tree,
baseline, ...), times ``load_history`` (CPU seconds and wall) and measures
memory per op: what the loaded history holds, and the peak after the
checkers ran (RSS high-water mark over the process's RSS before loading).
The baseline is another checkout of the project (``--baseline DIR``, e.g.
``git worktree add /tmp/base <commit>`` or ``git archive <commit> | tar -x -C /tmp/base``);
without it only this tree is measured. Also checks that both trees load
the very same ops (equal JSON line for line).

    .venv/bin/python bench/bench_history.py [--ops N] [--rounds R] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import gc, hashlib, json, os, resource, sys, time, types
# `stormproof` is the given tree's folder: on sys.path alone, the editable install would win (setup.py).
package = types.ModuleType("stormproof")
package.__path__ = [sys.argv[1]]
sys.modules["stormproof"] = package
import stormproof.harness
if not stormproof.harness.__file__.startswith(sys.argv[1].rstrip("/") + "/"):
    raise SystemExit(f"imported {stormproof.harness.__file__}, not the tree {sys.argv[1]}")
from stormproof.harness.history import load_history, op_to_json
from stormproof.harness.invariants import check_all, Snapshot

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

gc.collect()
before = rss()
cpu, wall = time.process_time(), time.perf_counter()
history = load_history(sys.argv[2])
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
gc.collect()
held = rss() - before
digest = hashlib.sha256()
for op in history.ops[:: max(1, len(history) // 20000)]:
    digest.update(op_to_json(op).encode())
check_all(history, Snapshot.build({}))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(json.dumps({"ops": len(history), "cpu": cpu, "wall": wall, "held": held, "peak": peak,
                  "digest": digest.hexdigest()[:16]}))
"""


def write_file(n_ops: int, path: str) -> None:
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from bench_checkers import _Generator

    from stormproof.harness.history import History, Op, write_history

    history, _ = _Generator(n_ops, 7).run()
    ops = []
    for op in history:
        if op.type != "invoke" and op.status is not None:
            result = {**op.result, "replayed": bool(op.result.get("replayed")),
                      "body_sha256": hashlib.sha256(str(op.index).encode()).hexdigest()}
            op = Op(op.index, op.type, op.process, op.f, op.tenant, op.args, op.status, result, op.error,
                    op.time_ns, op.wall, op.invoke_index)
        ops.append(op)
    write_history(History(ops), path)


def measure(tree: Path, path: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(tree), path], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="another checkout of the project to compare with")
    options = parser.parse_args()
    trees = ([("baseline", options.baseline.resolve())] if options.baseline else []) + [("this tree", REPO)]
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "history.jsonl")
        started = time.perf_counter()
        write_file(options.ops, path)
        size = os.path.getsize(path)
        print(f"history file: {options.ops:,} ops requested, {size / 1e6:.0f} MB ({size / options.ops:.0f} B/op), "
              f"written in {time.perf_counter() - started:.1f} s")
        results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
        for round_ in range(options.rounds):
            for name, tree in trees:  # taking turns: a busy moment of the machine hits both
                results[name].append(measure(tree, path))
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':12}{'ops':>11}{'load CPU s':>12}{'load wall s':>13}{'ops/s (CPU)':>14}{'held B/op':>11}"
          f"{'peak B/op':>11}  (median of {options.rounds})")
    digests = set()
    for name, runs in results.items():
        ops = runs[0]["ops"]
        cpu = statistics.median(r["cpu"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        held = statistics.median(r["held"] for r in runs) / ops
        peak = statistics.median(r["peak"] for r in runs) / ops
        digests.update(r["digest"] for r in runs)
        print(f"{name:12}{ops:>11,}{cpu:>12.2f}{wall:>13.2f}{ops / cpu:>14,.0f}{held:>11.0f}{peak:>11.0f}")
    print("same ops loaded by every tree" if len(digests) == 1 else f"TREES DISAGREE on the ops: {digests}")


if __name__ == "__main__":
    main()
