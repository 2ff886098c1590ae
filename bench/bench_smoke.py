"""`stormproof run smoke` from command to report: this tree beside a baseline checkout, taking turns.

Issue 17's target: the report within 8 s of the load's duration (stack start,
quiescence, checks and report together). Each round runs the smoke scenario
once with this tree's ``.venv`` and once with the baseline's (``--baseline
DIR``: another checkout with its own ``.venv``, e.g. ``git worktree add
/tmp/base main`` plus ``python3.11 -m venv .venv && .venv/bin/pip install -e .``),
the order alternating, and reads the run's ``stormproof.log`` for when the
system was up, when the load started and stopped, and when the report was
written. Per run it prints: the command's wall time, the report's time after
the command started, the load's own time, and the two overheads (report minus
load, command minus load), with the load average. The machine is shared:
compare medians of several rounds, never one run.

    .venv/bin/python bench/bench_smoke.py --baseline /tmp/base [--rounds 3] [--duration 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = {"up": "phase: system up", "load": "phase: load and nemesis started", "stopped": "phase: load stopped",
          "report": "phase: report written"}


def _stamp(line: str) -> float:
    return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=dt.timezone.utc).timestamp()


def one_run(tree: Path, duration: int, out: Path) -> dict[str, float]:
    """Run smoke with ``tree``'s venv; the figures of that run (seconds)."""
    stormproof = tree / ".venv" / "bin" / "stormproof"
    if not stormproof.exists():
        raise SystemExit(f"bench_smoke: {stormproof} is missing: make the checkout's venv first "
                         f"(cd {tree} && python3.11 -m venv .venv && .venv/bin/pip install -e .)")
    load_avg = os.getloadavg()[0]
    began = time.time()
    done = subprocess.run([str(stormproof), "run", "smoke", "--duration", str(duration), "--out", str(out),
                           "--quiet"], cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          timeout=duration + 300)
    ended = time.time()
    logs = list(out.glob("*/stormproof.log"))
    if done.returncode != 0 or len(logs) != 1:
        raise SystemExit(f"bench_smoke: the run with {tree} failed (exit {done.returncode}): {done.stderr[-400:]}")
    marks: dict[str, float] = {}
    for line in logs[0].read_text(encoding="utf-8").splitlines():
        for name, text in PHASES.items():
            if text in line:
                marks[name] = _stamp(line)
    load = marks["stopped"] - marks["load"]
    return {"command": ended - began, "report": marks["report"] - began, "up": marks["up"] - began, "load": load,
            "report_over": marks["report"] - began - load, "command_over": ended - began - load,
            "load_avg": (load_avg + os.getloadavg()[0]) / 2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="another checkout of the project, with its own .venv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load (smoke's own: 20)")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 10 or not 5 <= args.duration <= 60:
        parser.error("--rounds 1..10, --duration 5..60")
    trees = {"this": REPO, "baseline": Path(args.baseline).resolve()}
    work = Path(tempfile.mkdtemp(prefix="bench-smoke-"))
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    print(f"{os.cpu_count()} cores; smoke, {args.duration} s of load; this {REPO}, baseline {trees['baseline']}")
    print(f"{'round':>5} {'tree':9} {'command':>8} {'report':>7} {'up':>6} {'load':>6} {'report-load':>11} "
          f"{'command-load':>12} {'loadavg':>7}", flush=True)
    try:
        for round_no in range(args.rounds):
            order = list(trees) if round_no % 2 == 0 else list(reversed(trees))
            for name in order:
                f = one_run(trees[name], args.duration, work / f"{name}-{round_no}")
                figures[name].append(f)
                print(f"{round_no + 1:5} {name:9} {f['command']:8.2f} {f['report']:7.2f} {f['up']:6.2f} "
                      f"{f['load']:6.2f} {f['report_over']:11.2f} {f['command_over']:12.2f} {f['load_avg']:7.2f}",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nmedians (s)")
    for name, runs in figures.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{name:9} command {med['command']:.2f}, report at {med['report']:.2f}, up at {med['up']:.2f}, "
              f"report - load {med['report_over']:.2f} (target <= 8), command - load {med['command_over']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
