"""The matrix's result as data: tries, cells, all-on runs, the exit code, and ``verify.json``.

Each number has one owner here: a cell's "caught k of n" and its median time
to first violation are properties of :class:`CellResult`, computed from its
tries, and both the table, the page and ``verify.json`` read them from there.
The JSON form is described by ``verify.schema.json`` beside this module
(JSON Schema 2020-12); bump ``SCHEMA_VERSION`` on an incompatible change.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stormproof.harness.verify.cells import Cell

__all__ = [
    "SCHEMA_VERSION",
    "VERIFY_FILE",
    "AllOnResult",
    "CellResult",
    "Matrix",
    "Try",
    "exit_code",
    "matrix_to_dict",
    "schema_path",
    "write_verify_json",
]

SCHEMA_VERSION = 1
VERIFY_FILE = "verify.json"


def schema_path() -> Path:
    """The JSON Schema of verify.json, shipped with the package."""
    return Path(__file__).with_name("verify.schema.json")


@dataclass(frozen=True, slots=True)
class Try:
    """One run of a cell (weakened) or of a scenario (every fix on).

    ``ok`` means caught for a weakened run and passed for an all-on run;
    ``reason`` says why not (or, when ok, what was seen).
    """

    seed: int
    ok: bool
    verdict: str
    reason: str
    run_dir: str | None = None
    wall_s: float = 0.0
    #: Weakened runs: seconds from the start of the load to the first expected violation.
    first_violation_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "ok": self.ok, "verdict": self.verdict, "reason": self.reason,
                "run_dir": self.run_dir, "wall_s": round(self.wall_s, 3),
                "first_violation_s": None if self.first_violation_s is None else round(self.first_violation_s, 3)}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True, slots=True)
class CellResult:
    """A cell and its tries. A cell with a ``problem`` has no tries and escapes."""

    cell: Cell
    tries: tuple[Try, ...]

    @property
    def caught(self) -> int:
        return sum(t.ok for t in self.tries)

    @property
    def escaped(self) -> bool:
        return self.cell.problem is not None or not self.tries or self.caught < len(self.tries)

    @property
    def median_first_violation_s(self) -> float | None:
        return _median([t.first_violation_s for t in self.tries if t.ok and t.first_violation_s is not None])

    def to_dict(self) -> dict[str, Any]:
        median = self.median_first_violation_s
        return {"weaken": list(self.cell.weaken), "scenario": self.cell.scenario, "expect": list(self.cell.expect),
                "sources": list(self.cell.sources), "problem": self.cell.problem, "caught": self.caught,
                "tries": len(self.tries), "escaped": self.escaped,
                "median_first_violation_s": None if median is None else round(median, 3),
                "runs": [t.to_dict() for t in self.tries]}


@dataclass(frozen=True, slots=True)
class AllOnResult:
    """A scenario of the matrix run with every fix on: every try must pass."""

    scenario: str
    tries: tuple[Try, ...]
    #: Rows of the promise table that name this scenario as where they are at risk, yet no try exercised (their
    #: coverage count 0 in every try, one extra try included): the scenario does less than the table says, so a
    #: weakening of the row would escape there unseen. A failure.
    idle: tuple[str, ...] = ()

    @property
    def passed(self) -> int:
        return sum(t.ok for t in self.tries)

    @property
    def failed(self) -> bool:
        return not self.tries or self.passed < len(self.tries) or bool(self.idle)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "passed": self.passed, "tries": len(self.tries), "failed": self.failed,
                "idle_promises": list(self.idle), "runs": [t.to_dict() for t in self.tries]}


@dataclass(frozen=True, slots=True)
class Matrix:
    """Everything ``stormproof verify`` found, and how it was asked."""

    cells: tuple[CellResult, ...]
    all_on: tuple[AllOnResult, ...]
    tries: int
    duration_s: float | None
    backend: str
    started_at: str
    finished_at: str
    wall_s: float
    command: str
    #: Promises that make no cell (no weakening, or no scenario): listed, never silently dropped.
    uncovered_promises: tuple[str, ...] = ()


def exit_code(matrix: Matrix) -> int:
    """1 if any weakening escaped in any try or any all-on run failed, else 0."""
    if any(c.escaped for c in matrix.cells) or any(a.failed for a in matrix.all_on):
        return 1
    return 0


def matrix_to_dict(matrix: Matrix) -> dict[str, Any]:
    """The JSON form (see ``verify.schema.json``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": "pass" if exit_code(matrix) == 0 else "fail",
        "command": matrix.command,
        "tries": matrix.tries,
        "duration_s": matrix.duration_s,
        "backend": matrix.backend,
        "started_at": matrix.started_at,
        "finished_at": matrix.finished_at,
        "wall_s": round(matrix.wall_s, 3),
        "summary": {
            "cells": len(matrix.cells),
            "cells_escaped": sum(c.escaped for c in matrix.cells),
            "scenarios_all_on": len(matrix.all_on),
            "all_on_failed": sum(a.failed for a in matrix.all_on),
        },
        "cells": [c.to_dict() for c in matrix.cells],
        "all_on": [a.to_dict() for a in matrix.all_on],
        "uncovered_promises": list(matrix.uncovered_promises),
    }


def write_verify_json(matrix: Matrix, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``verify.json`` into ``out_dir`` atomically; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / VERIFY_FILE
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(matrix_to_dict(matrix), indent=2) + "\n")
    partial.replace(path)
    return path
