"""The report is written once the checks are done, before the stack stops; a stop that fails still makes the
run an error (its result and report are written again)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import stormproof.harness.runner.run as run
from stormproof.harness.history import History
from stormproof.harness.report import load_result
from stormproof.harness.report.html import REPORT_FILE
from stormproof.harness.runner import RunOptions
from stormproof.scenarios import load_scenario


def _fake_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stop_error: Exception | None) -> dict[str, Any]:
    """A run whose system is a stand-in and whose drive records nothing: only the runner's order is under test."""
    seen: dict[str, Any] = {}

    @contextmanager
    def system(plan: Any, options: Any) -> Iterator[object]:
        yield object()
        reports = list(tmp_path.glob(f"*/{REPORT_FILE}"))
        seen["report when the stack stops"] = [p.parent.name for p in reports]
        seen["verdict when the stack stops"] = load_result(reports[0].parent).verdict if reports else None
        if stop_error is not None:
            raise stop_error

    def drive(plan: Any, stack: Any, run_dir: Path, parts: Path, options: Any) -> tuple[Any, ...]:
        return History(()), [], [], None, None

    monkeypatch.setattr(run, "_system", system)
    monkeypatch.setattr(run, "_drive", drive)
    seen["outcome"] = run.run_scenario(load_scenario("smoke"), RunOptions(out_dir=str(tmp_path), duration_s=5))
    return seen


def test_the_report_is_written_before_the_stack_stops(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = _fake_run(monkeypatch, tmp_path, None)
    outcome = seen["outcome"]
    assert seen["report when the stack stops"] == [outcome.run_dir.name]
    assert outcome.verdict == seen["verdict when the stack stops"] == load_result(outcome.run_dir).verdict


def test_a_stop_that_fails_rewrites_the_run_as_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = _fake_run(monkeypatch, tmp_path, RuntimeError("the worker would not stop"))
    outcome = seen["outcome"]
    assert seen["report when the stack stops"] == [outcome.run_dir.name]  # written first, then again
    assert outcome.verdict == "error"
    on_disk = load_result(outcome.run_dir)
    assert on_disk.verdict == "error" and "the worker would not stop" in (on_disk.error or "")
    assert "the worker would not stop" in (outcome.run_dir / REPORT_FILE).read_text(encoding="utf-8")
