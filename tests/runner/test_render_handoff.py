"""The runner hands the report the history and result it holds: the page is the one read back from disk."""

from __future__ import annotations

import re

import stormproof.harness.report.render as render
from stormproof.harness.history import load_history
from stormproof.harness.report import load_result, render_run
from stormproof.harness.report.html import JUNIT_FILE, REPORT_FILE

from tests.report.runs import make_run

_GENERATED = re.compile(r"report generated [0-9T:-]+Z")


def test_in_memory_history_and_result_render_the_page_read_from_disk(tmp_path, monkeypatch):
    run = make_run(tmp_path / "run", scenario="smoke", seed=3, violating=True, started_at="2026-11-30T10:00:00Z")
    from_disk = (run.run_dir / REPORT_FILE).read_text(encoding="utf-8")
    junit = (run.run_dir / JUNIT_FILE).read_text(encoding="utf-8")
    history = load_history(run.run_dir / "history.jsonl")
    result = load_result(run.run_dir)
    (run.run_dir / REPORT_FILE).unlink()

    def no_second_load(path):
        raise AssertionError(f"the history was read again from {path}")

    monkeypatch.setattr(render, "load_history", no_second_load)
    monkeypatch.setattr(render, "load_result", no_second_load)
    rendered = render_run(run.run_dir, history=history, result=result)
    assert rendered.history_problem is None
    page = (run.run_dir / REPORT_FILE).read_text(encoding="utf-8")
    assert _GENERATED.sub("", page) == _GENERATED.sub("", from_disk)
    assert (run.run_dir / JUNIT_FILE).read_text(encoding="utf-8") == junit
