"""Scenario files: every mistake is a PlanError naming the file, the field path and the allowed values.

Each case here was, before the typed plan, either accepted silently (a typo
in a fault's params gave a PASS) or caught only after the stack had started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stormproof.harness.plan import FAULT_KINDS, PARAMS, PlanError, parse_scenario, read_scenario
from stormproof.scenarios import load_scenario, scenario_names

BASE: dict[str, Any] = {"name": "x", "invariants": ["single-active-session", "tenant-isolation"]}
LATENCY = {"at": 1, "duration": 2, "fault": "latency", "target": "postgres"}
TEMPLATE = {"fault": "latency", "target": ["postgres", "redis"], "params": {"latency": 5}}


def _error(patch: dict[str, Any]) -> str:
    with pytest.raises(PlanError) as info:
        parse_scenario({**BASE, **patch}, "my.toml")
    message = str(info.value)
    assert message.startswith("my.toml: ") and "\n" not in message
    return message


@pytest.mark.parametrize(
    ("patch", "path", "allowed"),
    [
        ({"durations": 3}, "durations", "duration_s"),
        ({"load": {"userz": 3}}, "load.userz", "users"),
        ({"load": {"stages": [{"until_s": 3, "users": 2, "spawn_rate": 1, "rate": 1}]}}, "load.stages[0].rate",
         "spawn_rate"),
        ({"stack": {"task_worker": 2}}, "stack.task_worker", "task_workers"),
        ({"slo": {"latency_p99_ms": 3}}, "slo.latency_p99_ms", "latency_p95_ms"),
        ({"faults": [{**LATENCY, "extra": 1}]}, "faults[0].extra", "duration"),
        ({"faults": [{**LATENCY, "params": {"latncy": 40}}]}, "faults[0].params.latncy", "jitter, latency"),
        ({"faults": [{**LATENCY, "fault": "kill", "params": {"latency": 40}}]}, "faults[0].params.latency", "none"),
        ({"random_faults": {"templates": [TEMPLATE], "cnt": 2}}, "random_faults.cnt", "count"),
        ({"random_faults": {"templates": [{**TEMPLATE, "params": {"jiter": 1}}]}},
         "random_faults.templates[0].params.jiter", "jitter"),
        ({"random_faults": {"templates": [{**TEMPLATE, "at": 1}]}}, "random_faults.templates[0].at", "target"),
    ],
)
def test_an_unknown_field_at_any_level_names_its_path_and_the_allowed_names(patch: dict, path: str,
                                                                               allowed: str) -> None:
    message = _error(patch)
    assert f"my.toml: {path}: unknown field; allowed: " in message
    assert allowed in message.split("allowed: ")[1]


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"duration_s": "long"}, "duration_s"),
        ({"seed": True}, "seed"),
        ({"load": {"users": 2.5}}, "load.users"),
        ({"load": "many"}, "load"),
        ({"invariants": "tenant-isolation"}, "invariants"),
        ({"stack": {"env": {"A": [1]}}}, "stack.env"),
        ({"faults": {"at": 1}}, "faults"),
        ({"faults": [{**LATENCY, "params": {"latency": "40"}}]}, "faults[0].params.latency"),
        ({"faults": [{**LATENCY, "params": {"stream": "sideways"}}]}, "faults[0].params.stream"),
        ({"faults": [{**LATENCY, "at": "soon"}]}, "faults[0].at"),
        ({"faults": [{**LATENCY, "target": 3}]}, "faults[0].target"),
    ],
)
def test_a_wrong_type_names_its_path(patch: dict, path: str) -> None:
    assert f"my.toml: {path}: " in _error(patch)


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"duration_s": 0}, "duration_s"),
        ({"duration_s": -5}, "duration_s"),
        ({"load": {"users": 0}}, "load.users"),
        ({"load": {"spawn_rate": 0}}, "load.spawn_rate"),
        ({"load": {"stages": [{"until_s": 0, "users": 2, "spawn_rate": 1}]}}, "load.stages[0].until_s"),
        ({"load": {"weights": {"session.start": -1}}}, "load.weights.session.start"),
        ({"stack": {"app_workers": 0}}, "stack.app_workers"),
        ({"slo": {"error_rate_max": 1.5}}, "slo.error_rate_max"),
        ({"slo": {"latency_p95_ms": 0}}, "slo.latency_p95_ms"),
        ({"faults": [{**LATENCY, "duration": 0}]}, "faults[0].duration"),
        ({"faults": [{**LATENCY, "at": -1}]}, "faults[0].at"),
        ({"faults": [{**LATENCY, "params": {"latency": -40}}]}, "faults[0].params.latency"),
        ({"faults": [{**LATENCY, "params": {"toxicity": 1.5}}]}, "faults[0].params.toxicity"),
        ({"faults": [{**LATENCY, "fault": "slicer", "params": {"average_size": 3, "size_variation": 3}}]},
         "faults[0].params"),
        ({"random_faults": {"templates": [TEMPLATE], "min_duration": 4, "max_duration": 2}}, "random_faults"),
        ({"random_faults": {"templates": []}}, "random_faults.templates"),
        ({"random_faults": {"templates": [{**TEMPLATE, "target": []}]}}, "random_faults.templates[0].target"),
    ],
)
def test_an_out_of_range_value_names_its_path(patch: dict, path: str) -> None:
    assert f"my.toml: {path}: " in _error(patch)


def test_an_unknown_fault_kind_lists_every_kind() -> None:
    message = _error({"faults": [{**LATENCY, "fault": "latncy"}]})
    assert "faults[0].fault: unknown 'latncy'; allowed: " in message
    assert all(kind in message for kind in FAULT_KINDS)


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"invariants": ["single-active-sesion"]}, "invariants: unknown invariant 'single-active-sesion'; known: "),
        ({"weaken": ["session-lok"]}, "weaken: unknown weakening 'session-lok'; known: "),
        ({"expect": ["job-applied-once"]}, "expect: 'job-applied-once' is expected to break but is not among"),
        ({"load": {"weights": {"session.begin": 3}}}, "load.weights: unknown action 'session.begin'; known: "),
        ({"stack": {"shunya": {"fail_rat": 0.5}}}, "stack.shunya: not a Shunya stub config: fail_rat"),
        ({"name": ""}, "name: "),
        ({"source": "elsewhere"}, "source: unknown field"),
        ({"load": {"quiet_tenants": 2}}, "load.quiet_tenants: 2 quiet tenants leave none of the stack's 2"),
        ({"stack": {"retention_beat_s": 2, "task_workers": 0}}, "stack: retention_beat_s needs task_workers of 1"),
    ],
)
def test_names_are_checked_against_their_registries(patch: dict, expected: str) -> None:
    message = _error(patch)
    assert f"my.toml: {expected}" in message
    if "known: " in expected:
        assert len(message.split("known: ")[1].split(", ")) > 3  # the allowed names, listed


def test_every_fault_kind_has_a_params_model_with_toxiproxy_names() -> None:
    assert set(PARAMS) == set(FAULT_KINDS)
    assert set(PARAMS["latency"].model_fields) == {"latency", "jitter", "stream", "toxicity"}
    assert set(PARAMS["slicer"].model_fields) == {"average_size", "size_variation", "delay", "stream", "toxicity"}
    assert PARAMS["kill"].model_fields == {} and PARAMS["down"].model_fields == {}


def test_the_parsed_scenario_is_typed_and_frozen() -> None:
    scenario = parse_scenario({**BASE, "faults": [{**LATENCY, "params": {"latency": 40}}]}, "my.toml")
    (fault,) = scenario.faults
    assert fault.params.latency == 40 and fault.params.jitter == 0 and fault.params.stream == "downstream"
    with pytest.raises(Exception, match="frozen"):
        scenario.duration_s = 3  # type: ignore[misc]


def test_bad_toml_missing_file_and_unknown_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(PlanError, match=r"bad\.toml: not valid TOML"):
        read_scenario(bad)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlanError) as missing:
        load_scenario("./nope.toml")
    assert "nope.toml: file not found" in str(missing.value) and "no scenario named" not in str(missing.value)
    with pytest.raises(PlanError, match="no scenario named 'nope'; built-in: .*smoke"):
        load_scenario("nope")


def test_every_built_in_scenario_parses() -> None:
    for name in scenario_names():
        scenario = load_scenario(name)
        assert scenario.name == name and scenario.invariants and scenario.description
