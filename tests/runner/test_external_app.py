"""Another backend instead of ours: started by command behind the proxies, or already running (external).

The "other backend" here is the reference app itself, started the way a user's
own service would be, so the test proves the plumbing, not a second app.
"""

from __future__ import annotations

import sys

import pytest

from stormproof.harness.plan import PlanError
from stormproof.harness.runner import RunOptions, run_scenario
from stormproof.harness.stack import LocalStack, StackConfig
from stormproof.scenarios import load_scenario

COMMAND = (sys.executable, "-m", "stormproof.reference_app", "serve", "--host", "{host}", "--port", "{port}")


def test_run_against_a_backend_started_by_command(tmp_path) -> None:
    scenario = load_scenario("tenant-probe")
    outcome = run_scenario(scenario, RunOptions(duration_s=5, out_dir=tmp_path, progress=False, app_command=COMMAND))
    assert outcome.verdict == "pass", outcome.result.error
    assert outcome.result.stats["requests"] > 0
    assert "--app-command" in outcome.result.run.command


def test_run_against_an_external_backend(tmp_path) -> None:
    scenario = load_scenario("idempotency-replay-storm")
    with LocalStack(StackConfig(task_workers=0, proxies=False, tenants=1)) as running:
        outcome = run_scenario(scenario, RunOptions(
            duration_s=5, out_dir=tmp_path, progress=False, app_url=running.app_url,
            database_url=running.database_url, jwt_secret=running.jwt_secret,
        ))
    assert outcome.verdict == "pass", outcome.result.error
    assert outcome.result.run.backend == "external"
    assert outcome.result.stats["requests"] > 0


def test_an_external_backend_cannot_take_faults(tmp_path) -> None:
    with pytest.raises(PlanError, match=r"smoke\.toml: faults\[0\]: the external backend offers no link faults"):
        run_scenario(load_scenario("smoke"), RunOptions(
            duration_s=5, out_dir=tmp_path, progress=False, app_url="http://127.0.0.1:9",
            database_url="postgresql://x@127.0.0.1:9/x",
        ))
    assert list(tmp_path.iterdir()) == []  # refused before any run directory


def test_an_unreachable_external_backend_is_a_clear_error(tmp_path) -> None:
    outcome = run_scenario(load_scenario("tenant-probe"), RunOptions(
        duration_s=5, out_dir=tmp_path, progress=False, app_url="http://127.0.0.1:9", database_url="postgresql://x@127.0.0.1:9/x",
    ))
    assert outcome.verdict == "error" and "does not answer" in (outcome.result.error or "")
    assert outcome.not_run == outcome.result.error  # marked as never run, not as a result
