"""``stormproof check``: judge histories that plain Locust recorded, like a ``run`` does.

A user who drives load with their own ``locust`` command against a stack from
``stormproof up --json-file stack.json`` ends up with
``stormproof-history/*.jsonl``. This turns them into the same verdicts,
``result.json``, ``history.jsonl`` and ``report.html`` as ``stormproof run``:
the stack file says where the database, the metrics and the Shunya stub are,
and the runner's own :func:`~stormproof.harness.runner.run.judge` and
:func:`~stormproof.harness.runner.run.record_run` do the rest. The stack must still be up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from ..history import merge_histories
from ..plan import RunPlan, build_plan
from .options import RunOptions
from .run import LOG_FILE, RunOutcome, _new_run_dir, _run_log, judge, log, record_run

__all__ = ["StackFile", "check_histories", "read_stack_file"]


class StackFile:
    """The system under test as ``stormproof up`` described it in its JSON file."""

    log_dir: Path | None = None

    def __init__(self, info: dict[str, Any]) -> None:
        missing = [key for key in ("app_url", "database_url", "tenants") if key not in info]
        if missing:
            raise ValueError(f"the stack file lacks {', '.join(missing)}: write it with `stormproof up --json-file PATH`")
        self.info = info
        self.app_url = str(info["app_url"]).rstrip("/")
        self.metrics_url = f"{str(info.get('app_direct_url') or info['app_url']).rstrip('/')}/metrics"
        self.check_dsn = str(info["database_url"])
        self.shunya_admin_url = info.get("shunya_url")
        #: The broker, read directly by the quiescence wait (None: tasks cannot be told lost from pending).
        self.redis_url = info.get("redis_url")
        self.proxy_api_url = info.get("proxy_api_url")
        self.tenants = list(info["tenants"])
        self.webhook_secret = str(info.get("webhook_secret") or "")

    def fault_targets(self) -> dict[str, Any]:
        return {}

    def baseline_metrics(self) -> str | None:
        path = self.info.get("baseline_metrics")
        return Path(path).read_text() if path and Path(path).is_file() else None


def read_stack_file(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``, with a one-line error naming what is wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (is `stormproof up --json-file {path}` still running?)") from None
    try:
        info = json.loads(text)
    except ValueError:
        raise ValueError(f"{path}: not a complete JSON object (write it with `stormproof up --json-file`)") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return info


def check_histories(
    history_dir: str | Path, stack_file: str | Path, *, scenario: str = "smoke", out_dir: str | Path = "reports",
) -> RunOutcome:
    """Judge every ``*.jsonl`` in ``history_dir`` against the stack of ``stack_file``.

    ``scenario`` chooses the invariants and SLO targets (its faults are ignored:
    plain Locust injected none). The stack must still be running.
    """
    from stormproof.scenarios import load_scenario

    history_dir = Path(history_dir)
    sources = sorted(history_dir.glob("*.jsonl"))
    if not sources:
        raise ValueError(f"{history_dir}: no *.jsonl histories (plain Locust writes stormproof-history/load-<pid>.jsonl)")
    info = read_stack_file(stack_file)
    system = StackFile(info)
    ready_at = info.get("ready_at")
    if ready_at is not None:  # a history from before this stack belongs to another one
        stale = [s for s in sources if s.stat().st_mtime < float(ready_at)]
        if stale:
            print(f"stormproof: skipping {len(stale)} histories older than the stack: "
                  f"{', '.join(s.name for s in stale[:3])}{' ...' if len(stale) > 3 else ''}", file=sys.stderr)
        sources = [s for s in sources if s not in stale]
        if not sources:
            raise ValueError(f"{history_dir}: every history there is older than the stack of {stack_file}")
    weakenings = tuple(info.get("weakenings") or ())
    plan: RunPlan = build_plan(load_scenario(scenario), RunOptions(weakenings=weakenings or None))
    plan = plan.model_copy(update={"faults": ()})
    started = dt.datetime.now(dt.timezone.utc)
    run_dir = _new_run_dir(Path(out_dir), f"check-{plan.scenario.name}-{started.strftime('%Y%m%dT%H%M%SZ')}")
    parts = run_dir / "history-parts"
    parts.mkdir()
    for source in sources:
        shutil.copyfile(source, parts / source.name)
    error = None
    history = None
    quiescence = None
    verdicts: list = []
    with _run_log(run_dir / LOG_FILE):
        try:
            history, verdicts, quiescence = judge(plan, system, parts, run_dir, system.baseline_metrics())
        except Exception as exc:  # noqa: BLE001 - reported as the run's error, like `run`
            log.exception("check %s failed", run_dir.name)
            error = " ".join(f"{type(exc).__name__}: {exc}".split())
            with contextlib.suppress(Exception):  # the report still shows what the load did
                history = merge_histories(sorted(parts.glob("*.jsonl")))
        command = f"stormproof check {history_dir} --stack {stack_file} --scenario {plan.scenario.name}"
        return record_run(plan, run_dir, started, history, verdicts, [], error=error, not_run=None, command=command,
                          quiescence=quiescence)
