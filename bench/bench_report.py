"""Benchmark rendering a run's report from a 1,000,000-op history, beside just loading the history.

Generates the realistic history of ``bench_checkers.py`` (200 clients, 20
tenants, every operation kind), adds three fault windows recorded as
nemesis ops and a seeded double session start, runs real checkers, writes
the run directory (history.jsonl, result.json), with invokes spread over
an hour (``--span``) so the charts must downsample, then times:

- baseline: ``load_history`` of history.jsonl (what any reader of the run pays);
- the runner's side: ``summarise_history`` + ``fault_windows``;
- ``time_series`` and ``render_report`` on the loaded history;
- ``render_run`` end to end (load, series, report.html, junit.xml).

It prints the times and the size of report.html (charts are downsampled
to at most 600 points; evidence is never dropped).

    .venv/bin/python bench/bench_report.py [--ops N] [--seed S] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
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
    fault_windows,
    render_report,
    render_run,
    summarise_history,
    time_series,
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


def _timed(label: str, fn, width: int = 44):
    started = time.perf_counter()
    value = fn()
    took = time.perf_counter() - started
    print(f"{label:<{width}}{took:>9.2f} s")
    return value, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--span", type=float, default=3600.0, help="seconds the run lasts (default: an hour)")
    parser.add_argument("--keep", type=Path, help="write the run directory here (default: a temporary one)")
    options = parser.parse_args()

    started = time.perf_counter()
    history, snapshot = _Generator(options.ops, options.seed).run()
    history, _, _ = _seed_double_start(history)
    history = _with_faults(_stretch(history, options.span))
    verdicts = check_all(history, snapshot, CHECKED, config=CheckConfig(latency_p95_ms=100.0))
    print(f"generated and checked {len(history):,} ops in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{v.invariant} {v.status}" for v in verdicts))

    run_dir = options.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
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
        print(f"history.jsonl: {size_mb:,.1f} MB, run span {span:,.1f} s")
        print(f"{'':44}{'time':>9}")

        loaded, base = _timed("baseline: load_history(history.jsonl)", lambda: load_history(run_dir / "history.jsonl"))
        _timed("runner: summarise_history + fault_windows", lambda: (summarise_history(loaded), fault_windows(loaded)))
        result = build_result(scenario, run, verdicts, loaded, files=RunFiles())
        write_result(run_dir, result)
        series, _ = _timed("time_series (chart buckets)", lambda: time_series(loaded))
        html, _ = _timed("render_report (HTML + SVG, evidence)", lambda: render_report(result, loaded, series,
                                                                                     run_dir=run_dir))
        del loaded
        rendered, total = _timed("render_run end to end (load + render + write)", lambda: render_run(run_dir))
        size = rendered.report.stat().st_size
        print(f"render_run / baseline load: {total / base:.2f}x; report.html {size / 1e3:,.0f} kB "
              f"({len(series.t)} points per chart line, bucket {series.bucket_s:g} s), "
              f"junit.xml {rendered.junit.stat().st_size / 1e3:,.1f} kB")
        assert len(html) > 0 and "VIOLATION" in html
    finally:
        if options.keep is None:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
