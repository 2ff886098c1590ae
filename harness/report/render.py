"""Rendering a run directory: result.json + history.jsonl -> report.html and junit.xml.

The runner calls ``render_run`` once the result is written, handing over
the result and the history it holds (no second load of a large history);
``stormproof report RUN_DIR`` calls it again later (after a template fix, or on an
artefact downloaded from CI), so the report depends on nothing but the
files of the run directory. A history that cannot be read does not stop
the report: the verdict and tables matter most and come from result.json.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stormproof.harness.history import History, HistoryError, HistoryFileError, load_history
from stormproof.harness.history.gcpause import paused_gc
from stormproof.harness.report.html import JUNIT_FILE, REPORT_FILE, render_report
from stormproof.harness.report.junit import render_junit
from stormproof.harness.report.result import RunResult, load_result
from stormproof.harness.report.stats import time_series

__all__ = ["Rendered", "render_run"]


@dataclass(frozen=True, slots=True)
class Rendered:
    """The files ``render_run`` wrote, and why the history was left out (None if it was used)."""

    report: Path
    junit: Path
    history_problem: str | None = None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def render_run(run_dir: str | os.PathLike[str], *, history: History | None = None,
               result: RunResult | None = None) -> Rendered:
    """Write ``report.html`` and ``junit.xml`` into ``run_dir``.

    ``result`` and ``history`` are what the runner already holds after
    checking (the result it wrote, the history it checked): given, they are
    used as they are and nothing is read back, so a 1M-operation history is
    never loaded a second time. None (``stormproof report DIR``) reads
    result.json and history.jsonl from ``run_dir``.

    Raises ``ResultError`` when result.json is needed and missing or malformed.
    """
    directory = Path(run_dir)
    if result is None:
        result = load_result(directory)
    problem: str | None = None
    if history is None:
        history_path = directory / result.files.history
        try:
            history = load_history(history_path)
        except FileNotFoundError:
            problem = f"no history file {result.files.history}"
        except (OSError, HistoryError, HistoryFileError) as exc:
            problem = f"{result.files.history}: {exc}"
    series = time_series(history) if history is not None and len(history) else None
    report = directory / REPORT_FILE
    junit = directory / JUNIT_FILE
    _write(junit, render_junit(result))  # first, so the report's link to it resolves
    with paused_gc():  # the page is built from many small strings while the history is alive
        page = render_report(result, history, series, run_dir=directory, history_problem=problem)
    _write(report, page)
    return Rendered(report, junit, problem)
