"""A scenario file as typed data: load mix and shape, faults, invariants, SLOs, seed.

Parsed once, from TOML, into frozen models; every default lives here (the SLO
defaults are the checkers' own, from ``CheckConfig``). Every name is checked
against its registry: load actions, invariants, weakenings, the Shunya stub's
config keys, fault kinds and their params. What depends on the run (the
backend's targets, the command-line options) is checked by ``build_plan``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field, StrictInt, ValidationError, field_validator, model_validator

from ..invariants.config import CheckConfig
from ..stack.local import StackConfig
from .base import Name, NonNegInt, PlanModel, PosFloat, PosInt
from .errors import PlanError, from_validation
from .faults import FAULT_KINDS, Fault, RandomFaults

__all__ = ["LoadSpec", "SLO", "Scenario", "StackSpec", "Stage", "parse_scenario", "read_scenario"]

# Defaults belong to the part that uses the value; the plan reads them from there.
_CHECK_DEFAULTS = {f.name: f.default for f in dataclasses.fields(CheckConfig)}
_STACK_DEFAULTS = {f.name: f.default for f in dataclasses.fields(StackConfig)}


@lru_cache(maxsize=1)
def _app_defaults() -> dict[str, Any]:
    """The reference app's settings defaults (its Settings dataclass): what it reads when the env says nothing."""
    from stormproof.reference_app.settings import Settings

    return {f.name: f.default for f in dataclasses.fields(Settings)}


def _known(kind: str, names: Any, allowed: Any) -> None:
    allowed = sorted(allowed)
    for name in names:
        if name not in allowed:
            raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(allowed)}")


class Stage(PlanModel):
    """Until ``until_s`` seconds into the run, hold ``users`` users, reached at ``spawn_rate`` per second."""

    until_s: PosFloat
    users: NonNegInt
    spawn_rate: PosFloat


class LoadSpec(PlanModel):
    users: PosInt = 20
    spawn_rate: PosFloat = 20.0
    hot_appointments: PosInt = 2
    #: Action -> weight; empty: the load's default mix.
    weights: dict[str, NonNegInt] = Field(default_factory=dict)
    stages: tuple[Stage, ...] = ()
    #: Locust worker processes (``--processes``); 0 runs the users in one process.
    workers: NonNegInt = 0
    request_timeout_s: PosFloat = 10.0
    #: The last this many tenants are quiet: each sends at most ``quiet_rate_per_s`` requests a second in
    #: all, so that a per-tenant limit never has cause to refuse them while the others flood (plan C3).
    quiet_tenants: NonNegInt = 0
    quiet_rate_per_s: PosFloat = 2.0
    #: When above 0, busy users act on a common clock tick of this many milliseconds instead of after a pause
    #: of 0 to 20 ms: a tenant's users then send at the same instant, again and again, and race each other.
    tick_ms: NonNegInt = 0

    @field_validator("weights")
    @classmethod
    def _actions(cls, weights: dict[str, int]) -> dict[str, int]:
        from ..load.config import ACTIONS

        _known("action", weights, ACTIONS)
        if weights and not any(weights.values()):
            raise ValueError("at least one action needs a weight above 0")
        return weights


class StackSpec(PlanModel):
    """The services of the run (defaults: ``StackConfig``'s, shared with ``stormproof up``)."""

    app_workers: PosInt = _STACK_DEFAULTS["app_workers"]
    task_workers: NonNegInt = _STACK_DEFAULTS["task_workers"]
    worker_concurrency: PosInt = _STACK_DEFAULTS["worker_concurrency"]
    #: Seconds between the periodic retention runs of the app's beat (run by the first task worker); 0: none.
    retention_beat_s: NonNegInt = _STACK_DEFAULTS["retention_beat_s"]
    tenants: PosInt = _STACK_DEFAULTS["tenants"]
    reps: PosInt = _STACK_DEFAULTS["reps"]
    appointments: PosInt = _STACK_DEFAULTS["appointments"]
    #: Extra environment of the app and its workers (``STORMPROOF_*`` knobs).
    env: dict[str, str] = Field(default_factory=dict)
    #: The Shunya stub's initial config (``stormproof.harness.shunya.config.StubConfig`` keys).
    shunya: dict[str, Any] = Field(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, env: Any) -> Any:
        if isinstance(env, Mapping):
            bad = [k for k, v in env.items() if isinstance(v, bool) or not isinstance(v, (str, int))]
            if bad:
                raise ValueError(f"{bad[0]} must be a string or an integer, got {env[bad[0]]!r}")
            return {str(k): str(v) for k, v in env.items()}
        return env

    @model_validator(mode="after")
    def _beat_needs_a_worker(self) -> StackSpec:
        if self.retention_beat_s and not self.task_workers:
            raise ValueError("retention_beat_s needs task_workers of 1 or more: the first task worker runs the beat")
        return self

    @field_validator("shunya")
    @classmethod
    def _stub_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        from ..shunya.config import ConfigError, StubConfig

        try:
            StubConfig().updated(config)
        except ConfigError as exc:
            raise ValueError(f"not a Shunya stub config: {exc}") from None
        return config

    def _setting(self, variable: str, field: str) -> Any:
        """What the app reads for ``variable``: the stack env's value, else the reference app's default."""
        return self.env.get(variable, _app_defaults()[field])

    @property
    def outbox_redeliver_s(self) -> float:
        """The reference app's outbox redeliver bound: the env's, else its default (docs/API.md)."""
        return float(self._setting("STORMPROOF_OUTBOX_REDELIVER_SECONDS", "outbox_redeliver_seconds"))

    @property
    def rate_limit(self) -> tuple[float | None, float]:
        """The per-tenant API limit the app is given (per second, burst); None: the app's default, not checked."""
        rate = float(self.env.get("STORMPROOF_RATE_API_PER_SECOND", 0) or 0)
        burst = float(self._setting("STORMPROOF_RATE_API_BURST", "rate_api_burst"))
        return (rate if rate > 0 else None), burst

    @property
    def task_rate_limit(self) -> tuple[float | None, float]:
        """The per-tenant task-enqueue limit the app is given (per second, burst); None: the app's default,
        not checked. The app's burst is one second of its rate (``TaskQueue``: ``max(1, rate)``)."""
        rate = float(self.env.get("STORMPROOF_RATE_TASKS_PER_SECOND", 0) or 0)
        return (rate, max(1.0, rate)) if rate > 0 else (None, 0.0)

    @property
    def shunya_rate_limit(self) -> tuple[float | None, float]:
        """The per-tenant limit on the app's Shunya calls (per second, burst); None: the app's default, not
        checked. The app's burst is one second of its rate (``max(1, rate)``)."""
        rate = float(self.env.get("STORMPROOF_RATE_SHUNYA_PER_SECOND", 0) or 0)
        return (rate, max(1.0, rate)) if rate > 0 else (None, 0.0)

    @property
    def retry_budget(self) -> tuple[float | None, float]:
        """The per-tenant retry budget the app is given (per second, burst): the env's or the app's default
        (plan C1: every app has one); None when it is switched off (0)."""
        rate = float(self._setting("STORMPROOF_RETRY_BUDGET_PER_SECOND", "retry_budget_per_second"))
        burst = float(self._setting("STORMPROOF_RETRY_BUDGET_BURST", "retry_budget_burst"))
        return (rate, burst) if rate > 0 else (None, 0.0)

    @property
    def task_max_retries(self) -> int:
        """Retries the app gives a task that fails transiently before it dead-letters it (plan C1)."""
        return int(self._setting("STORMPROOF_TASK_MAX_RETRIES", "task_max_retries"))

    @property
    def task_try_budget(self) -> dict[str, int]:
        """Task name -> the most tries of one task the app's budgets allow (plan C1).

        A submission is tried once plus ``STORMPROOF_TASK_MAX_RETRIES`` retries; a poll
        also re-runs for each poll of a pending job, up to ``STORMPROOF_POLL_BUDGET``.
        """
        from stormproof.reference_app.worker.names import POLL_TASK, SUBMIT_TASK

        retries = self.task_max_retries
        polls = int(self._setting("STORMPROOF_POLL_BUDGET", "poll_budget"))
        return {SUBMIT_TASK: 1 + retries, POLL_TASK: 1 + retries + polls}

    @property
    def idempotency_ttl_s(self) -> float:
        """Seconds an Idempotency-Key is kept (plan B1): older, the same key and payload run again as new."""
        return float(self._setting("STORMPROOF_IDEMPOTENCY_TTL_SECONDS", "idempotency_ttl_seconds"))

    @property
    def task_backoff_ms(self) -> tuple[int, int]:
        """The app's retry backoff (base, cap) in ms (plan C1): retry n waits uniform(0, min(cap, base * 2**n))."""
        return (int(self._setting("STORMPROOF_TASK_BACKOFF_BASE_MS", "task_backoff_base_ms")),
                int(self._setting("STORMPROOF_TASK_BACKOFF_CAP_MS", "task_backoff_cap_ms")))


class SLO(PlanModel):
    """The service-level objectives a run is held to (plan E5); defaults are the checkers'."""

    error_rate_max: Annotated[float, Field(ge=0, le=1, strict=True)] = _CHECK_DEFAULTS["error_rate_max"]
    latency_p95_ms: PosFloat = _CHECK_DEFAULTS["latency_p95_ms"]


class Scenario(PlanModel):
    """One scenario file. ``source`` is where it was read from (errors and replay commands name it)."""

    _internal: ClassVar[frozenset[str]] = frozenset({"source"})

    name: Name
    description: str = ""
    seed: StrictInt = 1
    duration_s: PosFloat = 20.0
    invariants: Annotated[tuple[Name, ...], Field(min_length=1)]
    load: LoadSpec = LoadSpec()
    stack: StackSpec = StackSpec()
    faults: tuple[Fault, ...] = ()
    random_faults: RandomFaults | None = None
    slo: SLO = SLO()
    #: The weakenings this scenario exists to catch, and the invariants that must then break.
    weaken: tuple[Name, ...] = ()
    expect: tuple[Name, ...] = ()
    source: str = "<memory>"

    @field_validator("description")
    @classmethod
    def _strip(cls, text: str) -> str:
        return text.strip()

    @field_validator("invariants")
    @classmethod
    def _invariants(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from ..invariants import names as checker_names

        _known("invariant", names, checker_names())
        return names

    @field_validator("weaken")
    @classmethod
    def _weakenings(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from stormproof.reference_app.weaken import WEAKENINGS

        _known("weakening", names, WEAKENINGS)
        return names

    @model_validator(mode="after")
    def _quiet_among_tenants(self) -> Scenario:
        if self.load.quiet_tenants >= self.stack.tenants:
            raise ValueError(f"load.quiet_tenants: {self.load.quiet_tenants} quiet tenants leave none of the "
                             f"stack's {self.stack.tenants} tenants to make noise; use fewer than stack.tenants")
        return self

    @model_validator(mode="after")
    def _expect_among_invariants(self) -> Scenario:
        for name in self.expect:
            if name not in self.invariants:
                raise ValueError(f"expect: {name!r} is expected to break but is not among the scenario's "
                                 f"invariants ({', '.join(self.invariants)})")
        return self


def parse_scenario(data: Mapping[str, Any], source: str = "<memory>") -> Scenario:
    """Validate a scenario's data; a :class:`PlanError` names ``source``, the field path and the allowed values."""
    if not isinstance(data, Mapping):
        raise PlanError(source, "", f"a scenario must be a table, got {type(data).__name__}")
    if "source" in data:
        raise PlanError(source, "source", "unknown field (set by the loader, not the file)")
    try:
        return Scenario.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise from_validation(exc, source, drop=frozenset(FAULT_KINDS)) from None


def read_scenario(path: Path) -> Scenario:
    """Read and validate one scenario file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(str(path), "", "file not found") from None
    except OSError as exc:
        raise PlanError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(str(path), "", f"not valid TOML: {exc}") from None
    return parse_scenario(data, str(path))


