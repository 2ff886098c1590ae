"""Benchmark the report of a 1,000,000-op run: today's renderer beside main's, in the same run.

Generates the realistic history of ``bench_checkers.py`` (200 clients, 20
tenants, every operation kind), adds three fault windows recorded as
nemesis ops and a seeded double session start, runs real checkers, writes
the run directory (history.jsonl, result.json), with invokes spread over
an hour (``--span``) so the charts must downsample. Then, interleaved
``--rounds`` times on that one run directory:

- **before**: the renderer of ``--baseline`` (a git revision, default
  ``main``), exported with ``git archive`` and run in a child process:
  ``render_run(run_dir)``, which loads history.jsonl again after the runner
  checked it (what a run paid);
- **after, runner**: this tree's ``render_run(run_dir, history=..., result=...)``
  with the history and result the runner already holds (what a run pays now);
- **after, from disk**: this tree's ``render_run(run_dir)`` in a child
  process (``stormproof report DIR``).

Each line gives wall seconds and CPU seconds (the child's own, or this
process's), so a busy shared machine shows up as wall above CPU. It ends
with the size and height-driving parts of report.html.

    .venv/bin/python bench/bench_report.py [--ops N] [--seed S] [--rounds R] [--baseline REV] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_checkers import _Generator, _seed_double_start  # noqa: E402 - the shared realistic history

from stormproof.harness.history import History, Op, load_history, write_history  # noqa: E402
from stormproof.harness.invariants import CheckConfig, check_all  # noqa: E402
from stormproof.harness.report import (  # noqa: E402
    FaultPlan,
    RunFiles,
    RunInfo,
    ScenarioInfo,
    SLOTargets,
    build_result,
    render_run,
    write_result,
)

FAULTS = (("latency", "app", 0.20, 0.35, {"latency_ms": 200}), ("pause", "worker", 0.50, 0.55, {}),
          ("partition", "redis", 0.70, 0.80, {}))
CHECKED = ("single-active-session", "idempotent-replay", "slo-error-rate", "slo-latency-p95")


def _stretch(history: History, span_s: float) -> History:
    """Spread invokes over ``span_s`` seconds keeping each call's latency (a long nightly run's shape)."""
    factor = span_s * 1e9 / max(1, history[-1].time_ns)
    ops: list[Op] = []
    for op in history:
        if op.invoke_index is None:
            at = int(op.time_ns * factor)
        else:
            invoke = history[op.invoke_index]
            at = ops[invoke.index].time_ns + (op.time_ns - invoke.time_ns)
        ops.append(Op(op.index, op.type, op.process, op.f, op.tenant, op.args, op.status, op.result, op.error,
                      at, at / 1e9, op.invoke_index))
    ops.sort(key=lambda op: (op.time_ns, op.index))  # index order is time order, as a recorder writes it
    moved = {op.index: position for position, op in enumerate(ops)}
    return History(Op(moved[op.index], op.type, op.process, op.f, op.tenant, op.args, op.status, op.result,
                      op.error, op.time_ns, op.wall, None if op.invoke_index is None else moved[op.invoke_index])
                   for op in ops)


def _with_faults(history: History) -> History:
    """The history with fault start/stop pairs inserted at fractions of its span, reindexed."""
    end = history[-1].time_ns
    events = []
    for fault, target, start, stop, params in FAULTS:
        events.append((int(end * start), fault, "start", target, params))
        events.append((int(end * stop), fault, "stop", target, params))
    events.sort()
    ops: list[Op] = []
    moved: dict[int, int] = {}
    pending = iter(events)
    upcoming = next(pending, None)
    for op in history:
        while upcoming is not None and upcoming[0] <= op.time_ns:
            at, fault, phase, target, params = upcoming
            args = {"fault": fault, "phase": phase, "target": target, "params": params}
            invoke = len(ops)
            ops.append(Op(invoke, "invoke", "nemesis", "fault", None, args, time_ns=at, wall=at / 1e9))
            ops.append(Op(invoke + 1, "ok", "nemesis", "fault", None, args, None, None, None, at, at / 1e9, invoke))
            upcoming = next(pending, None)
        moved[op.index] = len(ops)
        target_index = None if op.invoke_index is None else moved[op.invoke_index]
        ops.append(Op(len(ops), op.type, op.process, op.f, op.tenant, op.args, op.status, op.result, op.error,
                      op.time_ns, op.wall, target_index))
    return History(ops)


_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from stormproof.harness.report import render_run
started, cpu = time.perf_counter(), time.process_time()
render_run(sys.argv[2])
print(json.dumps({"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu}))
"""


def _child(tree: Path, run_dir: Path) -> tuple[float, float]:
    """``render_run(run_dir)`` of the code in ``tree``, in a fresh interpreter: (wall s, CPU s) of the call."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tree), str(run_dir)], cwd=tree, check=True,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)})
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return times["wall"], times["cpu"]


def _here(fn) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - started, time.process_time() - cpu


def _export(revision: str, into: Path) -> Path:
    """The tree of ``revision`` as files (git archive), to run its renderer beside this one."""
    tree = into / "baseline"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--span", type=float, default=3600.0, help="seconds the run lasts (default: an hour)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved before/after rounds (default 2)")
    parser.add_argument("--baseline", default="main", help="git revision of the renderer to compare with")
    parser.add_argument("--keep", type=Path, help="write the run directory here (default: a temporary one)")
    options = parser.parse_args()

    started = time.perf_counter()
    history, snapshot = _Generator(options.ops, options.seed).run()
    history, _, _ = _seed_double_start(history)
    history = _with_faults(_stretch(history, options.span))
    verdicts = check_all(history, snapshot, CHECKED, config=CheckConfig(latency_p95_ms=100.0))
    print(f"generated and checked {len(history):,} ops in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{v.invariant} {v.status}" for v in verdicts))

    scratch = Path(tempfile.mkdtemp(prefix="bench-report-"))
    run_dir = options.keep or scratch / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        baseline = _export(options.baseline, scratch)
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", options.baseline], check=True,
                                capture_output=True, text=True).stdout.strip()
        here = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
        write_history(history, run_dir / "history.jsonl")
        size_mb = (run_dir / "history.jsonl").stat().st_size / 1e6
        span = history[-1].time_ns / 1e9
        scenario = ScenarioInfo(
            name="bench-mix", description="bench_checkers' realistic mix with three fault windows", seed=options.seed,
            duration_s=span, users=200, spawn_rate=50.0, weights={"session.start": 30.0, "appointment.read": 30.0},
            faults=tuple(FaultPlan(span * a, span * (b - a), f, t, p) for f, t, a, b, p in FAULTS),
            invariants=CHECKED, slo=SLOTargets(0.01, 100.0))
        run = RunInfo(id=run_dir.name, started_at="2025-06-10T02:00:00Z", finished_at="2025-06-10T02:30:00Z",
                      duration_s=span, backend="local", weakenings=(), command="stormproof run bench-mix --seed 7",
                      version="0.1.0", commit=None, host="bench")
        del history
        held = load_history(run_dir / "history.jsonl")  # what the runner holds after checking
        result = build_result(scenario, run, verdicts, held, files=RunFiles())
        write_result(run_dir, result)
        print(f"history.jsonl: {size_mb:,.1f} MB, {len(held):,} ops, run span {span:,.1f} s; "
              f"baseline {options.baseline} = {commit}, this tree {here} (+ uncommitted changes if any); "
              f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
        rows: dict[str, list[tuple[float, float]]] = {"before": [], "after, runner": [], "after, from disk": []}
        for _ in range(options.rounds):
            rows["before"].append(_child(baseline, run_dir))
            before_size = (run_dir / "report.html").stat().st_size
            rows["after, runner"].append(_here(lambda: render_run(run_dir, history=held, result=result)))
            rows["after, from disk"].append(_child(REPO, run_dir))
        after_size = (run_dir / "report.html").stat().st_size
        label = {"before": f"before ({options.baseline}): render_run(dir), loads history",
                 "after, runner": "after: render_run(dir, history=, result=)",
                 "after, from disk": "after: render_run(dir) from disk (report DIR)"}
        print(f"{'':52}{'wall s (each round)':>24}{'best wall':>11}{'best CPU':>10}")
        for key, times in rows.items():
            each = " ".join(f"{w:.2f}" for w, _ in times)
            print(f"{label[key]:<52}{each:>24}{min(w for w, _ in times):>11.2f}{min(c for _, c in times):>10.2f}")
        best_before = min(w for w, _ in rows["before"])
        best_after = min(w for w, _ in rows["after, runner"])
        print(f"runner's report time: {best_before:.2f} s -> {best_after:.2f} s ({best_before / best_after:.1f}x); "
              f"report.html {before_size / 1e3:,.0f} kB -> {after_size / 1e3:,.0f} kB; "
              f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:,.0f} MB")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
