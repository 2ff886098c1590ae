"""read_task_log_traces: the trace ids on each task's end-of-run line in the workers' JSON logs (plan E1)."""

from __future__ import annotations

import json
from pathlib import Path

from stormproof.harness.runner.task_logs import read_task_log_traces


def _line(logger: str, msg: str, trace: str | None) -> str:
    return json.dumps({"ts": "2026-12-03T10:55:11.071Z", "level": "info", "logger": logger, "msg": msg,
                       "trace_id": trace, "pid": 1})


def test_end_of_run_lines_are_read_per_task(tmp_path: Path) -> None:
    task = "c60fd611e3c446809e6d7415bc9e1bd0"
    (tmp_path / "worker1.log").write_text("\n".join([
        _line("celery.worker.strategy", f"Task shunya.submit_job[{task}] received", None),  # before the run
        _line("celery.app.trace", f"Task shunya.submit_job[{task}] succeeded in 0.02s: None", "T1"),
        _line("celery.app.trace", "Task shunya.poll_shunya_job_status[5a1d2c3e4f5a6b7c] retry: Retry in 1s", None),
        _line("httpx", "HTTP Request: POST http://127.0.0.1:1/v1/jobs", "T1"),
        '{"logger": "celery.app.trace", "msg": "Task shunya.submit_job[cut',  # a process killed mid-line
        "plain text celery.app.trace line",
    ]) + "\n")
    (tmp_path / "worker2.log").write_text(
        _line("celery.app.trace", f"Task shunya.submit_job[{task}] succeeded in 0.01s: None", "T1") + "\n")
    assert read_task_log_traces(tmp_path) == {task: ("T1", "T1"), "5a1d2c3e4f5a6b7c": (None,)}


def test_no_logs_no_lines(tmp_path: Path) -> None:
    assert read_task_log_traces(None) is None
    assert read_task_log_traces(tmp_path / "missing") is None
    (tmp_path / "app.log").write_text(_line("uvicorn", "started", None) + "\n")
    assert read_task_log_traces(tmp_path) is None
