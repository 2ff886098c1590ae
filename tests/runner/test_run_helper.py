"""The pytest helper and the run's files, on a short custom scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stormproof.harness.history import load_history


def test_run_scenario_helper_with_a_custom_file(run_scenario, tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\nseed = 3\nduration_s = 5\ninvariants = ["single-active-session", "tenant-isolation"]\n'
        '[load]\nusers = 4\nspawn_rate = 4\nweights = { "session.start" = 3, "session.stop" = 2 }\n'
        '[stack]\ntask_workers = 0\n'
        '[[faults]]\nat = 1\nduration = 2\nfault = "latency"\ntarget = "postgres"\nparams = { latency = 20 }\n'
    )
    outcome = run_scenario(str(path))
    assert outcome.verdict == "pass", outcome.result.error
    result = json.loads((outcome.run_dir / "result.json").read_text())
    assert result["run"]["command"].startswith(f"stormproof run {path} --seed 3")
    history = load_history(outcome.run_dir / "history.jsonl")
    faults = [op for op in history.ops if op.f == "fault"]
    assert {op.args["phase"] for op in faults} >= {"start", "stop"}
    assert any(op.f == "session.start" and op.type == "ok" for op in history.ops)
    assert (outcome.run_dir / "logs" / "app.log").exists()


def test_a_bad_target_is_a_plan_error_before_anything_starts(run_scenario, tmp_path: Path) -> None:
    from stormproof.harness.plan import PlanError

    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\nduration_s = 2\ninvariants = ["tenant-isolation"]\n'
                    '[[faults]]\nat = 0.5\nduration = 1\nfault = "latency"\ntarget = "no-such-link"\n')
    with pytest.raises(PlanError, match=r"bad\.toml: faults\[0\]\.target: 'no-such-link' is not a link"):
        run_scenario(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]  # no run directory


def test_locust_worker_processes_all_reach_the_history(run_scenario) -> None:
    outcome = run_scenario("tenant-probe", duration_s=5, workers=2)
    assert outcome.verdict == "pass", outcome.result.error
    history = load_history(outcome.run_dir / "history.jsonl")
    sources = {op.process.split("/")[0] for op in history.ops if op.process != "nemesis"}
    assert len(sources) == 2, sources
