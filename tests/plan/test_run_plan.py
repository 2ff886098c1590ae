"""The run plan: options resolved with the scenario once, targets checked against the backend, a JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from stormproof.harness.invariants.config import CheckConfig
from stormproof.harness.plan import ALWAYS_CHECKS, SLO_CHECKS, PlanError, RunOptions, RunPlan, build_plan, parse_scenario, plan_from_dict
from stormproof.harness.report import RunInfo, ScenarioInfo, SLOTargets, build_result, load_result, schema_path, write_result
from stormproof.scenarios import load_scenario, scenario_names

BASE: dict[str, Any] = {"name": "x", "invariants": ["single-active-session"], "duration_s": 20, "seed": 4}


def _scenario(**patch: Any) -> Any:
    return parse_scenario({**BASE, **patch}, "my.toml")


def _fault(fault: str, target: str, at: float = 1, **params: Any) -> dict[str, Any]:
    return {"at": at, "duration": 2, "fault": fault, "target": target, "params": params}


def _plan_error(scenario: Any, options: RunOptions) -> str:
    with pytest.raises(PlanError) as info:
        build_plan(scenario, options)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (RunOptions(duration_s=-5), "command line: --duration: must be above 0, got -5"),
        (RunOptions(duration_s=0), "command line: --duration: must be above 0, got 0"),
        (RunOptions(users=0), "command line: --users: must be at least 1, got 0"),
        (RunOptions(users=-3), "command line: --users: must be at least 1, got -3"),
        (RunOptions(workers=-1), "command line: --workers: must be at least 0, got -1"),
        (RunOptions(weakenings=("sesion-lock",)), "command line: --weaken: unknown weakening 'sesion-lock'; known: "),
        (RunOptions(backend="podman"), "command line: --backend: unknown backend 'podman'; allowed: local, docker"),
        (RunOptions(app_url="http://127.0.0.1:9"), "command line: --app-url: needs --database-url"),
        (RunOptions(database_url="postgresql://x@127.0.0.1/x"), "command line: --database-url: only goes with --app-url"),
        (RunOptions(app_url="http://127.0.0.1:9", database_url="postgresql://x@h/x", weakenings=("session-lock",)),
         "command line: --weaken: switches off fixes of the reference app"),
        (RunOptions(backend="docker", app_command=("myapp",)), "command line: --app-command: runs your backend as a local"),
    ],
)
def test_bad_options_name_their_flag(options: RunOptions, expected: str) -> None:
    assert _plan_error(_scenario(), options).startswith(expected)


def test_an_unknown_link_names_the_target_and_the_allowed_links() -> None:
    scenario = _scenario(faults=[_fault("latency", "postgres"), _fault("latency", "no-such-link")])
    assert _plan_error(scenario, RunOptions()) == (
        "my.toml: faults[1].target: 'no-such-link' is not a link of the local backend; "
        "allowed: app, postgres, redis, shunya, webhook")


def test_process_targets_follow_the_task_workers() -> None:
    scenario = _scenario(stack={"task_workers": 2}, faults=[_fault("pause", "worker2-pool"), _fault("kill", "worker2")])
    assert build_plan(scenario).faults[0].target == "worker2-pool"
    one = _scenario(stack={"task_workers": 1}, faults=[_fault("pause", "worker2-pool")])
    assert "faults[0].target: 'worker2-pool' is not a process of the local backend; allowed: postgres, redis, shunya, " \
           "app, worker1, worker1-pool" in _plan_error(one, RunOptions())


def test_docker_offers_the_recipes_processes_and_nothing_else() -> None:
    """Both stacks launch one recipe, so docker offers the same process targets as local."""
    scenario = _scenario(faults=[_fault("latency", "redis"), _fault("pause", "worker1-pool", at=3)])
    assert build_plan(scenario, RunOptions(backend="docker")).faults[1].target == "worker1-pool"
    message = _plan_error(_scenario(faults=[_fault("kill", "worker3")]), RunOptions(backend="docker"))
    assert message.startswith("my.toml: faults[0].target: 'worker3' is not a process of the docker backend")


@pytest.mark.parametrize("name", ["pause-past-lock-ttl", "redis-flap"])
def test_built_in_scenarios_with_process_faults_plan_on_docker(name: str) -> None:
    plan = build_plan(load_scenario(name), RunOptions(backend="docker"))
    assert plan.backend == "docker" and any(f.fault in ("kill", "pause") for f in plan.faults)


def test_faults_on_an_external_backend_name_the_fault_and_the_fix() -> None:
    message = _plan_error(load_scenario("smoke"), RunOptions(app_url="http://127.0.0.1:9", database_url="postgresql://h/x"))
    assert "smoke.toml: faults[0]: the external backend offers no link faults" in message
    assert "--app-command" in message


def test_random_fault_templates_are_checked_against_the_backend_too() -> None:
    scenario = _scenario(random_faults={"templates": [{"fault": "latency", "target": ["app", "redsi"]}]})
    assert "my.toml: random_faults.templates[0].target: 'redsi' is not a link" in _plan_error(scenario, RunOptions())


def test_options_override_the_scenario_and_late_faults_are_left_out() -> None:
    scenario = _scenario(load={"users": 7, "workers": 1}, faults=[_fault("latency", "app", at=2),
                                                                   _fault("down", "redis", at=12)])
    plan = build_plan(scenario)
    assert (plan.seed, plan.duration_s, plan.users, plan.workers) == (4, 20, 7, 1)
    assert [f.at for f in plan.faults] == [2, 12]
    plan = build_plan(scenario, RunOptions(seed=9, duration_s=10, users=3, workers=0,
                                           weakenings=("session-lock", "job-lock")))
    assert (plan.seed, plan.duration_s, plan.users, plan.workers) == (9, 10, 3, 0)
    assert [f.at for f in plan.faults] == [2]  # the one at 12 s would start after the load
    assert plan.weakenings == ("job-lock", "session-lock")
    assert plan.checks == ("single-active-session", *ALWAYS_CHECKS, *SLO_CHECKS)


def test_random_faults_are_drawn_once_by_seed_and_merged_by_time() -> None:
    scenario = _scenario(faults=[_fault("latency", "app", at=5, latency=10)],
                         random_faults={"templates": [{"fault": "reset_peer", "target": ["redis", "postgres"],
                                                       "params": {"timeout": 100}}], "count": 3})
    first, again, other = build_plan(scenario), build_plan(scenario), build_plan(scenario, RunOptions(seed=5))
    assert first == again and first.faults != other.faults
    assert len(first.faults) == 4 and [f.at for f in first.faults] == sorted(f.at for f in first.faults)
    drawn = [f for f in first.faults if f.fault == "reset_peer"]
    assert all(f.target in ("redis", "postgres") and f.params.timeout == 100 and f.end <= 20 for f in drawn)


def test_the_nemesis_schedule_is_the_plans_faults() -> None:
    plan = build_plan(_scenario(faults=[_fault("latency", "app", latency=40)]))
    (spec,) = plan.schedule().faults
    assert (spec.at, spec.duration, spec.fault, spec.target) == (1, 2, "latency", "app")
    assert spec.params == {"latency": 40, "jitter": 0, "stream": "downstream", "toxicity": 1.0}


def test_every_default_has_one_home() -> None:
    checks = {f.name: f.default for f in dataclasses.fields(CheckConfig)}
    config = build_plan(_scenario()).check_config()
    assert (config.error_rate_max, config.latency_p95_ms) == (checks["error_rate_max"], checks["latency_p95_ms"])
    from stormproof.reference_app.settings import Settings

    burst = {f.name: f.default for f in dataclasses.fields(Settings)}["rate_api_burst"]
    assert config.rate_limit_per_s is None and config.rate_limit_burst == burst
    limited = build_plan(_scenario(stack={"env": {"STORMPROOF_RATE_API_PER_SECOND": "20"}})).check_config()
    assert limited.rate_limit_per_s == 20


def test_the_checkers_learn_the_apps_backoff_and_key_ttl() -> None:
    """Retry timing (C1) and key expiry (B1) are judged against what the run gives the app, its defaults else."""
    from stormproof.reference_app.settings import Settings

    app = {f.name: f.default for f in dataclasses.fields(Settings)}
    config = build_plan(_scenario()).check_config()
    assert config.task_backoff_ms == (app["task_backoff_base_ms"], app["task_backoff_cap_ms"])
    assert config.idempotency_ttl_s == app["idempotency_ttl_seconds"]
    env = {"STORMPROOF_TASK_BACKOFF_BASE_MS": "50", "STORMPROOF_TASK_BACKOFF_CAP_MS": "200",
           "STORMPROOF_IDEMPOTENCY_TTL_SECONDS": "3"}
    given = build_plan(_scenario(stack={"env": env})).check_config()
    assert (given.task_backoff_ms, given.idempotency_ttl_s) == ((50, 200), 3.0)


def test_an_app_already_running_is_not_judged_by_settings_the_scenario_never_gave_it() -> None:
    """With --app-url the scenario's stack env never reaches the app: its TTL, backoff and budgets are unknown.

    idempotency-replay-storm gives the app a 3 s key TTL; judged by it, an external app keeping keys for
    24 h (correctly) was reported replaying expired keys. The same holds for the rate limit: noisy-tenant's
    20/s would call an app with a higher limit of its own over the limit.
    """
    env = {"STORMPROOF_TASK_BACKOFF_BASE_MS": "50", "STORMPROOF_TASK_BACKOFF_CAP_MS": "200",
           "STORMPROOF_IDEMPOTENCY_TTL_SECONDS": "3", "STORMPROOF_RATE_API_PER_SECOND": "20",
           "STORMPROOF_RATE_TASKS_PER_SECOND": "2"}
    external = build_plan(_scenario(stack={"env": env}),
                          RunOptions(app_url="http://127.0.0.1:9", database_url="postgresql://u@127.0.0.1:9/db"))
    config = external.check_config()
    assert (config.task_backoff_ms, config.idempotency_ttl_s, dict(config.task_try_budget)) == (None, None, {})
    assert config.rate_limit_per_s is None and config.task_rate_per_s is None
    assert external.idempotency_ttl_s is None
    started = build_plan(_scenario(stack={"env": env}))
    assert (started.idempotency_ttl_s, started.check_config().rate_limit_per_s) == (3.0, 20)
    assert (started.check_config().task_rate_per_s, started.check_config().task_rate_burst) == (2, 2)


def test_the_plan_is_frozen() -> None:
    plan = build_plan(_scenario())
    with pytest.raises(Exception, match="frozen"):
        plan.users = 3  # type: ignore[misc]


def _round_trip(plan: RunPlan, tmp_path: Path) -> RunPlan:
    info = ScenarioInfo(name=plan.scenario.name, description="", seed=plan.seed, duration_s=plan.duration_s,
                        users=plan.users, spawn_rate=1.0, weights={}, faults=(), invariants=plan.checks,
                        slo=SLOTargets(0.01, 200.0))
    run = RunInfo(id="r", started_at="2026-11-30T00:00:00+00:00", finished_at="2026-11-30T00:00:01+00:00",
                  duration_s=1.0, backend=plan.backend, weakenings=plan.weakenings, command="stormproof run x",
                  version="0", commit=None, host="h")
    write_result(tmp_path, build_result(info, run, [], None, error="x", plan=plan.to_dict()))
    data = json.loads((tmp_path / "result.json").read_text())
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(json.loads(schema_path().read_text())).validate(data)
    loaded = load_result(tmp_path)
    assert loaded.plan is not None
    return plan_from_dict(loaded.plan)


@pytest.mark.parametrize("name", scenario_names())
def test_every_built_in_plan_survives_result_json(name: str, tmp_path: Path) -> None:
    plan = build_plan(load_scenario(name), RunOptions(weakenings=load_scenario(name).weaken or None))
    assert _round_trip(plan, tmp_path) == plan


def test_a_plan_with_drawn_faults_on_docker_survives_result_json(tmp_path: Path) -> None:
    scenario = _scenario(faults=[_fault("slicer", "app", average_size=10, size_variation=3)],
                         random_faults={"templates": [{"fault": "latency", "target": "redis"}], "count": 2},
                         stack={"env": {"A": 1}, "shunya": {"fail_rate": 0.5}})
    plan = build_plan(scenario, RunOptions(backend="docker", users=2))
    assert _round_trip(plan, tmp_path) == plan


def test_a_tampered_plan_is_refused_by_name() -> None:
    data = build_plan(_scenario(faults=[_fault("latency", "app")])).to_dict()
    data["faults"][0]["params"]["latncy"] = 3
    with pytest.raises(PlanError, match=r"plan\.faults\[0\]\.params\.latncy: unknown field; allowed: jitter"):
        plan_from_dict(data)


def test_the_nemesis_plays_the_plan_and_refuses_a_stack_that_lacks_a_planned_process(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from stormproof.harness.history import HistoryRecorder
    from stormproof.harness.runner.nemesis import Nemesis

    plan = build_plan(_scenario(faults=[_fault("pause", "worker1-pool")]))
    recorder = HistoryRecorder(tmp_path / "nemesis.jsonl", origin_ns=0)
    try:
        stack = SimpleNamespace(proxy_api_url=None, fault_targets=lambda: {"worker1-pool": object()})
        assert Nemesis(plan, stack, recorder).schedule == plan.schedule()
        bare = SimpleNamespace(proxy_api_url=None, fault_targets=lambda: {})
        with pytest.raises(ValueError, match=r"no process \['worker1-pool'\]"):
            Nemesis(plan, bare, recorder)
    finally:
        recorder.close()
