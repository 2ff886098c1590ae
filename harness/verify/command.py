"""``stormproof verify`` end to end: build the cells, check the selection, run, write and print.

Every input is checked before the first run starts (names in ``--only`` and
``--scenario``, ``--tries``, ``--duration``), because a typo found after
twenty minutes of runs wastes the twenty minutes. Exit codes: 0 every cell
caught in every try and every all-on run passed, 1 otherwise, 2 bad input
(a :class:`VerifyError`, printed by the CLI as one line).
"""

from __future__ import annotations

import datetime as dt
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stormproof.harness.verify.cells import PromiseLike, VerifyError, build_cells, select_cells, uncovered_promises
from stormproof.harness.verify.matrix import Runner, run_matrix
from stormproof.harness.verify.outcome import Matrix, exit_code, write_verify_json
from stormproof.harness.verify.page import write_page
from stormproof.harness.verify.table import render_table

__all__ = ["SOURCES", "VerifyArgs", "load_promises", "verify"]

#: Where the cells of a matrix may come from (``--source``).
SOURCES = ("all", "scenarios", "promises")


@dataclass(frozen=True)
class VerifyArgs:
    tries: int = 3
    duration_s: float | None = None
    only: tuple[str, ...] = ()
    scenario: str | None = None
    out_dir: Path | None = None
    backend: str = "local"
    #: Where cells come from: "all", "scenarios" (each scenario file's weaken/expect) or "promises" (the table).
    source: str = "all"
    #: False (``--no-all-on``): only the weakened cells, for a batch of a matrix whose all-on runs are
    #: measured elsewhere (the false-alarm soak); the verdict then says nothing about false alarms.
    all_on: bool = True

    def command(self) -> str:
        parts = ["stormproof", "verify", "--tries", str(self.tries)]
        if self.duration_s is not None:
            parts += ["--duration", f"{self.duration_s:g}"]
        if self.only:
            parts += ["--only", ",".join(self.only)]
        if self.scenario:
            parts += ["--scenario", self.scenario]
        if self.backend != "local":
            parts += ["--backend", self.backend]
        if self.source != "all":
            parts += ["--source", self.source]
        if not self.all_on:
            parts.append("--no-all-on")
        return shlex.join(parts)


def load_promises() -> tuple[PromiseLike, ...]:
    """``stormproof.harness.promises.PROMISES`` when that package exists, else none (the scenario files alone)."""
    import importlib

    try:
        promises = importlib.import_module("stormproof.harness.promises")
    except ModuleNotFoundError as exc:
        if exc.name in ("stormproof.harness.promises",):
            return ()
        raise
    return tuple(promises.PROMISES)


def load_gaps() -> Mapping[str, str]:
    """``stormproof.harness.promises.GAPS``: the rows no run can verify yet, and why (empty without the table)."""
    try:
        from stormproof.harness.promises import GAPS
    except ImportError:
        return {}
    return GAPS


def verify(args: VerifyArgs, *, runner: Runner | None = None,
           promises: Sequence[PromiseLike] | None = None,
           echo: Callable[[str], None] | None = None) -> int:
    """Run the matrix ``args`` ask for; write verify.json and verify.html; print the table; return the exit code."""
    from stormproof.scenarios import load_scenario, scenario_names

    if args.tries < 1:
        raise VerifyError(f"--tries must be at least 1, got {args.tries}")
    if args.duration_s is not None and args.duration_s <= 0:
        raise VerifyError(f"--duration must be a positive number of seconds, got {args.duration_s:g}")
    if args.source not in SOURCES:
        raise VerifyError(f"--source must be one of {', '.join(SOURCES)}, got {args.source!r}")
    if args.backend not in ("local", "docker"):
        raise VerifyError(f"--backend must be local or docker, got {args.backend!r}")
    progress = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    scenarios = {name: load_scenario(name) for name in scenario_names()}
    table = tuple(load_promises() if promises is None else promises)
    gaps = load_gaps() if promises is None else {}
    cells = build_cells(scenarios.values() if args.source != "promises" else (),
                        table if args.source != "scenarios" else (), gaps=gaps, scenarios_by_name=scenarios)
    cells = select_cells(cells, only=args.only, scenario=args.scenario,
                         scenarios=scenarios)
    started = dt.datetime.now(dt.timezone.utc)
    out_dir = args.out_dir or Path("reports") / f"verify-{started.strftime('%Y%m%dT%H%M%SZ')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = time.monotonic()
    cell_results, all_on = run_matrix(cells, scenarios, tries=args.tries, out_dir=out_dir,
                                      duration_s=args.duration_s, backend=args.backend, runner=runner,
                                      echo=progress, all_on=args.all_on,
                                      at_risk={name: [p.id for p in table if name in p.scenarios] for name in scenarios})
    finished = dt.datetime.now(dt.timezone.utc)
    matrix = Matrix(cells=cell_results, all_on=all_on, tries=args.tries, duration_s=args.duration_s,
                    backend=args.backend, started_at=started.isoformat(), finished_at=finished.isoformat(),
                    wall_s=time.monotonic() - clock, command=args.command(),
                    uncovered_promises=uncovered_promises(table, gaps))
    json_path = write_verify_json(matrix, out_dir)
    page = write_page(matrix, out_dir)
    print(render_table(matrix))
    print(f"  verify.json  {json_path}\n  page         {page}")
    return exit_code(matrix)
