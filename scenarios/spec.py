"""A scenario as plain data: load mix and shape, fault schedule, invariants, SLOs, seed.

Scenario files are TOML. Every field is checked here, and a bad file is a
:class:`ScenarioError` that names the file and the field, so a typo never
turns into a silently different run.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Scenario", "LoadSpec", "StackSpec", "ScenarioError", "parse_scenario", "read_scenario"]

_TOP = {"name", "description", "seed", "duration_s", "invariants", "weaken", "expect", "load", "stack",
        "faults", "random_faults", "slo"}
_LOAD = {"users", "spawn_rate", "hot_appointments", "weights", "stages", "workers", "request_timeout_s"}
_STACK = {"app_workers", "task_workers", "worker_concurrency", "tenants", "reps", "appointments", "env", "shunya"}
_SLO = {"error_rate_max", "latency_p95_ms"}
_RANDOM = {"seed", "templates", "count", "min_duration", "max_duration", "horizon"}


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class LoadSpec:
    users: int = 20
    spawn_rate: float = 20.0
    hot_appointments: int = 2
    weights: Mapping[str, int] = field(default_factory=dict)
    stages: tuple[Mapping[str, float], ...] = ()
    #: Locust worker processes (``--processes``); 0 runs the users in one process.
    workers: int = 0
    request_timeout_s: float = 10.0


@dataclass(frozen=True)
class StackSpec:
    app_workers: int = 1
    task_workers: int = 1
    worker_concurrency: int = 2
    tenants: int = 2
    reps: int = 3
    appointments: int = 5
    env: Mapping[str, str] = field(default_factory=dict)
    shunya: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    duration_s: float
    invariants: tuple[str, ...]
    load: LoadSpec
    stack: StackSpec
    faults: tuple[Mapping[str, Any], ...] = ()
    random_faults: Mapping[str, Any] | None = None
    slo: Mapping[str, float] = field(default_factory=dict)
    #: The weakenings this scenario exists to catch, and the invariants that must then break.
    weaken: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    source: str = "<memory>"


class _Fields:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {message}")

    def table(self, data: Mapping[str, Any], where: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self.fail(where, f"must be a table, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.fail(where, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return data

    def number(self, data: Mapping[str, Any], key: str, where: str, default: float, *, minimum: float = 0,
               integer: bool = False) -> Any:
        value = data.get(key, default)
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
            kind = "an integer" if integer else "a number"
            raise self.fail(f"{where}{key}", f"must be {kind} >= {minimum}, got {value!r}")
        return value

    def strings(self, data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{where}{key}", f"must be a list of names, got {value!r}")
        return tuple(value)


def parse_scenario(data: Mapping[str, Any], source: str = "<memory>") -> Scenario:
    from harness.faults.schedule import FaultSpec
    from harness.invariants import names as checker_names
    from harness.load.config import ACTIONS
    from reference_app.weaken import WEAKENINGS

    f = _Fields(source)
    f.table(data, "scenario", _TOP)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise f.fail("name", "must be a non-empty string")
    load_data = f.table(data.get("load", {}), "load", _LOAD)
    weights = load_data.get("weights", {})
    f.table(weights, "load.weights", set(ACTIONS))
    for action, weight in weights.items():
        f.number(weights, action, "load.weights.", 0, integer=True)
    if weights and not any(weights.values()):
        raise f.fail("load.weights", "at least one action needs a weight above 0")
    stages = load_data.get("stages", [])
    if not isinstance(stages, list):
        raise f.fail("load.stages", "must be a list of tables")
    for i, stage in enumerate(stages):
        f.table(stage, f"load.stages[{i}]", {"until_s", "users", "spawn_rate"})
        for key in ("until_s", "users", "spawn_rate"):
            f.number(stage, key, f"load.stages[{i}].", -1, minimum=0, integer=(key == "users"))
    load = LoadSpec(
        users=f.number(load_data, "users", "load.", 20, minimum=1, integer=True),
        spawn_rate=float(f.number(load_data, "spawn_rate", "load.", 20, minimum=0.1)),
        hot_appointments=f.number(load_data, "hot_appointments", "load.", 2, minimum=1, integer=True),
        weights=dict(weights),
        stages=tuple(dict(s) for s in stages),
        workers=f.number(load_data, "workers", "load.", 0, integer=True),
        request_timeout_s=float(f.number(load_data, "request_timeout_s", "load.", 10, minimum=0.1)),
    )
    stack_data = f.table(data.get("stack", {}), "stack", _STACK)
    env = stack_data.get("env", {})
    if not isinstance(env, Mapping) or not all(isinstance(v, (str, int)) for v in env.values()):
        raise f.fail("stack.env", "must be a table of strings")
    shunya = stack_data.get("shunya", {})
    if not isinstance(shunya, Mapping):
        raise f.fail("stack.shunya", "must be a table (the stub's initial config)")
    stack = StackSpec(
        app_workers=f.number(stack_data, "app_workers", "stack.", 1, minimum=1, integer=True),
        task_workers=f.number(stack_data, "task_workers", "stack.", 1, integer=True),
        worker_concurrency=f.number(stack_data, "worker_concurrency", "stack.", 2, minimum=1, integer=True),
        tenants=f.number(stack_data, "tenants", "stack.", 2, minimum=1, integer=True),
        reps=f.number(stack_data, "reps", "stack.", 3, minimum=1, integer=True),
        appointments=f.number(stack_data, "appointments", "stack.", 5, minimum=1, integer=True),
        env={k: str(v) for k, v in env.items()},
        shunya=dict(shunya),
    )
    faults = data.get("faults", [])
    if not isinstance(faults, list):
        raise f.fail("faults", "must be a list of tables ([[faults]])")
    for i, fault in enumerate(faults):
        try:
            FaultSpec.from_dict(fault)
        except (ValueError, TypeError, AttributeError) as exc:
            raise f.fail(f"faults[{i}]", str(exc)) from None
    random_faults = data.get("random_faults")
    if random_faults is not None:
        f.table(random_faults, "random_faults", _RANDOM)
    invariants = f.strings(data, "invariants", "")
    known = set(checker_names())
    for inv in invariants:
        if inv not in known:
            raise f.fail("invariants", f"unknown invariant {inv!r}; known: {', '.join(sorted(known))}")
    expect = f.strings(data, "expect", "")
    for inv in expect:
        if inv not in invariants:
            raise f.fail("expect", f"{inv!r} is expected to break but is not among the scenario's invariants")
    weaken = f.strings(data, "weaken", "")
    for w in weaken:
        if w not in WEAKENINGS:
            raise f.fail("weaken", f"unknown weakening {w!r}; known: {', '.join(sorted(WEAKENINGS))}")
    slo = f.table(data.get("slo", {}), "slo", _SLO)
    for key in slo:
        f.number(slo, key, "slo.", 0)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise f.fail("description", "must be a string")
    return Scenario(
        name=name,
        description=description.strip(),
        seed=f.number(data, "seed", "", 1, integer=True),
        duration_s=float(f.number(data, "duration_s", "", 20, minimum=1)),
        invariants=invariants,
        load=load,
        stack=stack,
        faults=tuple(dict(x) for x in faults),
        random_faults=dict(random_faults) if random_faults else None,
        slo=dict(slo),
        weaken=weaken,
        expect=expect,
        source=source,
    )


def read_scenario(path: Path) -> Scenario:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return parse_scenario(data, str(path))
