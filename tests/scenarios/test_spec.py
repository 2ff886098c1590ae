"""Scenario files: every built-in one parses; a bad one gets an error naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormproof.scenarios import ScenarioError, load_scenario, parse_scenario, read_scenario, scenario_names

REQUIRED = {"session-start-storm", "assignment-storm", "webhook-poll-storm", "idempotency-replay-storm",
            "tenant-probe", "redis-flap", "db-latency", "pause-past-lock-ttl", "noisy-tenant", "smoke", "lifecycle-under-load"}


def test_the_required_scenarios_exist_and_parse() -> None:
    assert REQUIRED <= set(scenario_names())
    for name in scenario_names():
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.invariants and scenario.description


BASE = {"name": "x", "invariants": ["single-active-session"]}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"durations": 3}, "durations: unknown field; allowed: "),
        ({"duration_s": "long"}, "duration_s"),
        ({"load": {"users": 0}}, "load.users"),
        ({"load": {"weights": {"session.begin": 3}}}, "load.weights"),
        ({"load": {"weights": {"session.start": -1}}}, "load.weights.session.start"),
        ({"faults": [{"at": 1, "duration": 0, "fault": "latency", "target": "postgres"}]}, "faults[0]"),
        ({"faults": [{"at": 1, "duration": 2, "fault": "latency", "target": "postgres", "extra": 1}]}, "faults[0]"),
        ({"invariants": ["single-active-sesion"]}, "unknown invariant 'single-active-sesion'"),
        ({"expect": ["tenant-isolation"]}, "expect"),
        ({"weaken": ["session-lok"]}, "unknown weakening 'session-lok'"),
        ({"stack": {"env": {"A": [1]}}}, "stack.env"),
        ({"slo": {"latency_p99_ms": 3}}, "slo"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_fields_are_named(patch: dict, field: str) -> None:
    with pytest.raises(ScenarioError, match="my.toml") as info:
        parse_scenario({**BASE, **patch}, "my.toml")
    assert field in str(info.value)


def test_bad_toml_and_missing_files_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        read_scenario(bad)
    with pytest.raises(ScenarioError, match="no scenario named 'nope'"):
        load_scenario("nope")


def test_a_scenario_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\ninvariants = ["tenant-isolation"]\n[load]\nusers = 3\n')
    scenario = load_scenario(str(path))
    assert scenario.load.users == 3 and scenario.source == str(path)
