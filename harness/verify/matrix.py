"""Running the matrix: every cell weakened, then every scenario of the matrix with every fix on.

Runs go one at a time through the runner's public API (``run_scenario`` with
``RunOptions``), exactly as ``stormproof run`` would run them, so a cell's
run directory is an ordinary run with its own report and replay command.
Sequential on purpose: runs share the machine's cores, and two at once would
make the timings (and the races the scenarios provoke) depend on each other.

Try ``i`` of a scenario uses seed ``scenario.seed + i``: try 0 is the
scenario's own run, and the others vary the users' choices and any random
faults, so a cell caught by one lucky interleaving shows up as k < n.
The runner is a parameter so the matrix logic is testable without a stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from stormproof.harness.history import History, load_history
from stormproof.harness.plan.run_plan import SLO_CHECKS
from stormproof.harness.runner import RunOptions, RunOutcome
from stormproof.harness.verify.cells import Cell
from stormproof.harness.verify.judge import first_violation_s, judge_all_on, judge_weakened
from stormproof.harness.verify.outcome import AllOnResult, CellResult, Try
from stormproof.scenarios import Scenario

__all__ = ["Runner", "run_matrix"]

log = logging.getLogger(__name__)

Runner = Callable[[Scenario, RunOptions], RunOutcome]


def run_matrix(
    cells: Sequence[Cell],
    scenarios: dict[str, Scenario],
    *,
    tries: int,
    out_dir: Path,
    duration_s: float | None = None,
    backend: str = "local",
    runner: Runner | None = None,
    echo: Callable[[str], None] = lambda line: None,
    all_on: bool = True,
    at_risk: Mapping[str, Sequence[str]] | None = None,
) -> tuple[tuple[CellResult, ...], tuple[AllOnResult, ...]]:
    """Run every cell ``tries`` times weakened, then each of their scenarios ``tries`` times with every fix on.

    ``all_on=False`` skips the second half (a batch whose false alarms another run measures). ``at_risk``: per
    scenario, the promise table's rows that name it; those no all-on try exercised are the result's ``idle``
    (a failure: the scenario does less than the table says). Before a row is called idle, the scenario runs one
    more all-on try with the next seed, so that a situation a short try may miss by chance is not a false alarm;
    that try must pass like the others.
    """
    if runner is None:
        from stormproof.harness.runner import run_scenario as runner
    runs_dir = out_dir / "runs"
    total = sum(tries for c in cells if c.problem is None) + tries * len({c.scenario for c in cells}) * all_on
    extra = 0
    done = 0

    def run(scenario: Scenario, seed: int, weaken: tuple[str, ...] | None) -> tuple[RunOutcome | None, str, float]:
        nonlocal done
        done += 1
        of = f"{total}+{extra}" if extra else f"{total}"
        options = RunOptions(duration_s=duration_s, seed=seed, backend=backend, weakenings=weaken,
                             out_dir=runs_dir, progress=False)
        what = f"{'+'.join(weaken)} @ {scenario.name}" if weaken else f"all fixes on @ {scenario.name}"
        echo(f"[{done}/{of}] {what}, seed {seed}")
        started = time.monotonic()
        try:
            return runner(scenario, options), "", time.monotonic() - started
        except Exception as exc:  # noqa: BLE001 - one broken run is an escape or a failure, not a crash
            log.exception("run of %s failed", what)
            return None, f"{type(exc).__name__}: {exc}", time.monotonic() - started

    cell_results = []
    for cell in cells:
        scenario = scenarios[cell.scenario]
        results = []
        for i in range(tries if cell.problem is None else 0):
            outcome, crash, wall = run(scenario, scenario.seed + i, cell.weaken)
            results.append(_weakened_try(cell, scenario.seed + i, outcome, crash, wall, out_dir))
            echo(f"    {'caught' if results[-1].ok else 'ESCAPED'}: {results[-1].reason}")
        cell_results.append(CellResult(cell, tuple(results)))

    all_on_results = []
    for name in dict.fromkeys(c.scenario for c in cells) if all_on else ():
        scenario = scenarios[name]
        slos = sorted({i for c in cells if c.scenario == name and c.problem is None for i in c.expect} & set(SLO_CHECKS))
        results = []
        exercised: set[str] = set()
        wanted = list((at_risk or {}).get(name, ()))
        i = 0
        while i < tries or (i == tries and any(p not in exercised for p in wanted) and exercised):
            if i == tries:
                extra += 1
                echo(f"    not exercised yet: {', '.join(p for p in wanted if p not in exercised)}: one more try")
            seed = scenario.seed + i
            i += 1
            outcome, crash, wall = run(scenario, seed, None)
            if outcome is not None:
                exercised |= {str(e.get("promise")) for e in outcome.result.coverage if e.get("count")}
            if outcome is None:
                results.append(Try(seed, False, "error", f"the runner crashed: {crash}", None, wall))
            else:
                passed, reason = judge_all_on(outcome.result, slos)
                results.append(Try(seed, passed, outcome.verdict, reason,
                                   _relative(outcome.run_dir, out_dir), wall))
            echo(f"    {'pass' if results[-1].ok else 'FAILED'}: {results[-1].reason}")
        idle = tuple(p for p in wanted if p not in exercised) if exercised else ()
        all_on_results.append(AllOnResult(name, tuple(results), idle))
    return tuple(cell_results), tuple(all_on_results)


def _weakened_try(cell: Cell, seed: int, outcome: RunOutcome | None, crash: str, wall: float,
                  out_dir: Path) -> Try:
    if outcome is None:
        return Try(seed, False, "error", f"the runner crashed: {crash}", None, wall)
    caught, reason = judge_weakened(outcome.result, cell.expect, cell.promises)
    first = None
    if caught:
        history = _history(outcome.run_dir)
        if history is not None:
            first = first_violation_s(outcome.result, history, cell.expect)
    return Try(seed, caught, outcome.verdict, reason, _relative(outcome.run_dir, out_dir), wall, first)


def _history(run_dir: Path) -> History | None:
    try:
        return load_history(run_dir / "history.jsonl")
    except (OSError, ValueError) as exc:
        log.warning("no history to time the first violation in %s: %s", run_dir, exc)
        return None


def _relative(run_dir: Path, out_dir: Path) -> str:
    """The run directory relative to the verify output (so the page's links survive a move), else as is."""
    try:
        return Path(run_dir).resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return str(run_dir)
