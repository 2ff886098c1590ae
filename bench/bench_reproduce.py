"""Per weakening: from a run that caught it to a shrunk reproducer, with its figures.

For each weakening of the reference app (or ``--only NAME``, repeatable), the
verify matrix's cell for it (``stormproof.harness.verify.cells``: the scenario
file that names it, else the promise table's first scenario) is run weakened
(``run_scenario``, as ``stormproof run SCENARIO --weaken ...``), and if the
run caught its expected invariant, ``stormproof reproduce`` runs on the first
violation of that invariant a replay can select. One row per weakening:

    weakening, cell, invariant, requests/faults selected -> shrunk,
    reproduced (weakened, after shrinking), passed (every fix on),
    generated test's wall time, total seconds

A weakening that cannot be reproduced is a row too, with the reason (no cell
in the matrix, the run did not catch it, no violation a replay can select, or
a replay that does not reproduce it). ``--run NAME=RUN_DIR`` reuses a run
instead of making one. Long: about 2 to 4 minutes per weakening.

    .venv/bin/python bench/bench_reproduce.py --only session-lock --duration 6
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from stormproof.harness.reproduce import ReproduceOptions, SelectionError, numbered_violations, reproduce
from stormproof.harness.reproduce.select import UNREPRODUCIBLE_KINDS, load_run, select_case
from stormproof.harness.runner import RunOptions, run_scenario
from stormproof.harness.verify.cells import SCENARIO_SOURCE, Cell, build_cells
from stormproof.harness.verify.command import load_gaps, load_promises
from stormproof.reference_app.weaken import WEAKENINGS
from stormproof.scenarios import load_scenario, scenario_names

HEADER = (f"{'weakening':25} {'cell':44} {'invariant':24} {'selected':>8} {'shrunk':>6} {'weak':>5} "
          f"{'fixed':>5} {'test s':>6} {'total s':>7}  note")


def cell_for(name: str, cells: list[Cell], scenario: str | None = None) -> Cell | None:
    """The matrix's cell for one weakening: its scenario file's, else the smallest set naming it."""
    mine = [c for c in cells if name in c.weaken and c.problem is None and scenario in (None, c.scenario)]
    mine.sort(key=lambda c: (SCENARIO_SOURCE not in c.sources, len(c.weaken), c.scenario))
    return mine[0] if mine else None


def _violation(run_dir: Path, expect: tuple[str, ...]) -> tuple[int | None, str]:
    """The first violation of an expected invariant that a replay can select, or why there is none."""
    record = load_run(run_dir)
    reasons = []
    for number, (verdict, _) in enumerate(numbered_violations(record.result), 1):
        if verdict.get("invariant") not in expect or verdict.get("kind") in UNREPRODUCIBLE_KINDS:
            continue
        try:
            select_case(record, number)
            return number, ""
        except SelectionError as exc:
            reasons.append(str(exc))
    return None, (reasons[0] if reasons else "no violation of the expected invariant")


def _row(name: str, cell: Cell | None, invariant: str = "-", figures: dict[str, Any] | None = None,
         seconds: float = 0.0, note: str = "") -> str:
    f = figures or {}
    sel, small = f.get("selected"), f.get("shrunk")
    after, fixed, test = f.get("after"), f.get("fixed"), f.get("test_file")
    size = lambda d: f"{d['requests']}/{d['faults']}" if d else "-"  # noqa: E731
    ratio = lambda d, k: f"{d[k]}/{d['tries']}" if d else "-"  # noqa: E731
    wall = f"{test['seconds']:.1f}" if test else "-"
    return (f"{name:25} {(cell.label if cell else '-'):44} {invariant:24} {size(sel):>8} {size(small):>6} "
            f"{ratio(after, 'reproduced'):>5} {ratio(fixed, 'passed'):>5} {wall:>6} {seconds:7.1f}  {note}")


def one(name: str, cells: list[Cell], args: argparse.Namespace, out: Path, runs: dict[str, str]) -> str:
    cell = cell_for(name, cells, args.scenario.get(name))
    if cell is None:
        return _row(name, None, note="no cell in the verify matrix: no scenario is known to catch it")
    began = time.monotonic()
    if name in runs:
        run_dir = Path(runs[name])
    else:
        outcome = run_scenario(load_scenario(cell.scenario), RunOptions(
            duration_s=args.duration, out_dir=out / "runs", progress=False, weakenings=cell.weaken))
        run_dir = outcome.run_dir
        caught = [i for i in cell.expect if (v := outcome.verdict_of(i)) is not None and v.status == "invalid"]
        if not caught:
            return _row(name, cell, ",".join(cell.expect), seconds=time.monotonic() - began,
                        note=f"the run did not catch it ({run_dir})")
    number, why = _violation(run_dir, cell.expect)
    if number is None:
        return _row(name, cell, ",".join(cell.expect), seconds=time.monotonic() - began,
                    note=f"nothing to replay: {why}")
    log = io.StringIO()
    try:
        figures = reproduce(run_dir, ReproduceOptions(
            violation=number, tries=args.tries, shrink_budget_s=args.shrink_budget, time_test=True,
            out_dir=out / f"reproduce-{name}"), log)
    except Exception as exc:  # noqa: BLE001 - one broken weakening is a row, not the end of the table
        return _row(name, cell, ",".join(cell.expect), seconds=time.monotonic() - began,
                    note=f"{type(exc).__name__}: {exc}")
    (out / f"reproduce-{name}.log").write_text(log.getvalue())
    note = f"violation {number} of {run_dir.name}"
    lean = figures.get("one_worker")
    if lean:
        note += f"; one app worker {lean['reproduced']}/{lean['tries']} ({'kept' if lean['kept'] else 'not kept'})"
    if not figures["after"]["reproduced"]:
        note = "NOT reproduced: " + note
    return _row(name, cell, figures["invariant"], figures, time.monotonic() - began, note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=None, help="a weakening (repeatable)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load of each run (default 8)")
    parser.add_argument("--tries", type=int, default=10, help="replays per measured rate (default 10)")
    parser.add_argument("--shrink-budget", type=float, default=60.0)
    parser.add_argument("--run", action="append", default=[], metavar="NAME=RUN_DIR",
                        help="reuse this run for this weakening")
    parser.add_argument("--scenario", action="append", default=[], metavar="NAME=SCENARIO",
                        help="use this weakening's cell in this scenario (default: its scenario file's)")
    parser.add_argument("--out", default=None, help="where runs, logs and tests go (default: a temp dir)")
    parser.add_argument("--no-header", action="store_true")
    args = parser.parse_args()
    unknown = sorted(set(args.only or ()) - set(WEAKENINGS))
    if unknown:
        parser.error(f"--only: unknown weakening(s) {', '.join(unknown)}; see `stormproof weakenings`")
    runs = dict(item.split("=", 1) for item in args.run)
    args.scenario = dict(item.split("=", 1) for item in args.scenario)
    scenarios = {name: load_scenario(name) for name in scenario_names()}
    cells = list(build_cells(scenarios.values(), load_promises(), gaps=load_gaps(), scenarios_by_name=scenarios))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-reproduce-"))
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_header:
        print(HEADER, flush=True)
    for name in args.only or list(WEAKENINGS):
        print(one(name, cells, args, out, runs), flush=True)
    print(f"# runs, logs and tests: {out}; rates: {args.tries} replays each", flush=True)
    (out / "args.json").write_text(json.dumps(vars(args)))


if __name__ == "__main__":
    main()
