"""read_error_log_traces: the trace ids on the app's error lines in its JSON logs (plan E1: error logs traced)."""

from __future__ import annotations

import json
from pathlib import Path

from stormproof.harness.runner.error_logs import read_error_log_traces


def _line(level: str, msg: str, trace: str | None) -> str:
    return json.dumps({"ts": "2026-12-03T10:55:11.071Z", "level": level, "logger": "stormproof.reference_app",
                       "msg": msg, "trace_id": trace, "pid": 1})


def test_error_lines_are_counted_by_trace(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text("\n".join([
        _line("error", "unhandled error on POST /api/v1/x", "T1"),
        _line("info", "request served", "T2"),  # not an error
        _line("error", "unhandled error on POST /api/v1/x", None),
        _line("critical", "outbox relay stopped", None),
        '{"level": "error", "msg": "unhandled error on POST /api/v1/x", "trace_id": "T3', # killed mid-line
        "ERROR plain text line T4",
    ]) + "\n")
    (tmp_path / "worker1.log").write_text(_line("error", "task failed", "T1") + "\n")
    assert read_error_log_traces(tmp_path) == {"T1": 2, None: 2}


def test_no_error_line_or_no_directory_is_none(tmp_path: Path) -> None:
    """An app that logs no JSON error line is not judged on its error logs (None), nor a run without logs."""
    (tmp_path / "app.log").write_text(_line("info", "request served", "T2") + "\nERROR plain\n")
    assert read_error_log_traces(tmp_path) is None
    assert read_error_log_traces(tmp_path / "absent") is None
    assert read_error_log_traces(None) is None
