"""Fault schedules: when each fault starts and stops, and the guaranteed heal.

Modelled on Jepsen's nemesis/combined.clj: a *fault package* bundles a fault
(``start``), its undo (``stop``) and a final ``heal`` that restores health no
matter what happened.  A schedule is plain, bounded data (parseable from
dicts), either fixed or drawn from a seed so a failing run can be replayed.
``run_schedule`` applies it and, in ``finally``, stops every active fault and
heals every package, so an interrupted run never leaves the system broken.
Every injection and heal is reported as a ``FaultEvent`` for the history.

Scenario files do not come through ``FaultSpec.from_dict``: their faults are
parsed once, typed per kind, by ``stormproof.harness.plan``, whose ``RunPlan.schedule()``
hands this module ready ``FaultSpec`` values. ``from_dict`` stays for direct
users of this library (any package name, no target check).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "FaultEvent",
    "FaultPackage",
    "FaultSpec",
    "MAX_SCHEDULE_SECONDS",
    "Schedule",
    "run_schedule",
]

_log = logging.getLogger(__name__)

#: Hard cap on a schedule's length: schedules are bounded by construction.
MAX_SCHEDULE_SECONDS = 24 * 3600.0

Phase = Literal["start", "stop"]


@dataclass(frozen=True)
class FaultEvent:
    """One fault operation for the history: an injection or a heal."""

    fault: str
    phase: Phase
    target: str
    params: Mapping[str, Any]
    monotonic: float
    wall: float
    kind: Literal["fault"] = "fault"


class FaultPackage(Protocol):
    """A fault, its undo, and the final heal (Jepsen's nemesis package)."""

    def start(self, target: str, params: Mapping[str, Any]) -> object:
        """Inject; return a handle that ``stop`` understands."""

    def stop(self, handle: object) -> None:
        """Undo one injection."""

    def heal(self) -> None:
        """Restore full health whatever state the package is in (idempotent)."""


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"fault spec {key!r} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FaultSpec:
    """``fault`` on ``target`` from ``at`` seconds for ``duration`` seconds."""

    at: float
    duration: float
    fault: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.at < 0 or self.duration <= 0:
            raise ValueError(f"fault spec needs at >= 0 and duration > 0: {self}")
        if not self.fault or not isinstance(self.fault, str) or not isinstance(self.target, str):
            raise ValueError(f"fault spec needs a fault name and a target: {self}")

    @property
    def end(self) -> float:
        return self.at + self.duration

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultSpec:
        """Parse ``{"at", "duration", "fault", "target", "params"}``."""
        unknown = set(data) - {"at", "duration", "fault", "target", "params"}
        if unknown:
            raise ValueError(f"unknown fault spec keys: {sorted(unknown)}")
        params = data.get("params") or {}
        if not isinstance(params, Mapping):
            raise ValueError("fault spec 'params' must be a mapping")
        return cls(
            at=_number(data, "at"),
            duration=_number(data, "duration"),
            fault=str(data.get("fault") or ""),
            target=str(data.get("target") or ""),
            params=dict(params),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "duration": self.duration, "fault": self.fault,
                "target": self.target, "params": dict(self.params)}


@dataclass(frozen=True)
class Schedule:
    """An ordered, time-bounded list of fault specs."""

    faults: tuple[FaultSpec, ...]

    def __post_init__(self) -> None:
        if self.end > MAX_SCHEDULE_SECONDS:
            raise ValueError(f"schedule lasts {self.end}s, above the {MAX_SCHEDULE_SECONDS}s cap")

    @property
    def end(self) -> float:
        """Seconds from start until the last fault is healed."""
        return max((f.end for f in self.faults), default=0.0)

    @classmethod
    def from_dicts(cls, items: Iterable[Mapping[str, Any]]) -> Schedule:
        return cls(tuple(sorted((FaultSpec.from_dict(i) for i in items), key=lambda f: f.at)))

    def to_dicts(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.faults]

    @classmethod
    def random(
        cls,
        seed: int,
        templates: Sequence[Mapping[str, Any]],
        *,
        horizon: float,
        count: int,
        min_duration: float,
        max_duration: float,
    ) -> Schedule:
        """``count`` faults drawn from ``templates`` at random times in [0, horizon].

        Templates are ``{"fault", "target" (str or list), "params"}``; the same
        seed always yields the same schedule.
        """
        if not templates or count < 0 or horizon <= 0 or not 0 < min_duration <= max_duration:
            raise ValueError("random schedule needs templates, count >= 0, horizon > 0, 0 < min <= max duration")
        rng = random.Random(seed)
        specs = []
        for _ in range(count):
            template = templates[rng.randrange(len(templates))]
            targets = template["target"]
            target = targets if isinstance(targets, str) else targets[rng.randrange(len(targets))]
            duration = round(min(horizon, rng.uniform(min_duration, max_duration)), 3)
            at = round(rng.uniform(0.0, horizon - duration), 3)
            specs.append(FaultSpec(at, duration, template["fault"], target, dict(template.get("params") or {})))
        return cls(tuple(sorted(specs, key=lambda f: f.at)))


def run_schedule(
    schedule: Schedule,
    packages: Mapping[str, FaultPackage],
    record: Callable[[FaultEvent], None],
    *,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    wait: Callable[[float], bool] | None = None,
) -> None:
    """Apply ``schedule`` in real time, then stop and heal everything.

    ``stop`` ends the run early (the heal still happens).  ``wait(seconds)``
    returns True when interrupted; it defaults to ``stop.wait`` (tests pass a
    fake clock and wait).  Exceptions from a fault propagate after healing.
    """
    missing = {f.fault for f in schedule.faults} - set(packages)
    if missing:
        raise KeyError(f"no fault package for {sorted(missing)}")
    if wait is None:
        event = stop if stop is not None else threading.Event()
        wait = event.wait

    def emit(spec: FaultSpec, phase: Phase, target: str, params: Mapping[str, Any]) -> None:
        record(FaultEvent(spec.fault, phase, target, dict(params), clock(), wall()))

    # stops sort before starts at the same instant, so back-to-back faults work
    timeline = sorted(
        [(f.at, 1, i, "start") for i, f in enumerate(schedule.faults)]
        + [(f.end, 0, i, "stop") for i, f in enumerate(schedule.faults)]
    )
    active: dict[int, object] = {}
    used = sorted({f.fault for f in schedule.faults})
    origin = clock()
    try:
        for offset, _, index, phase in timeline:
            delay = origin + offset - clock()
            if delay > 0 and wait(delay):
                break
            if stop is not None and stop.is_set():
                break
            spec = schedule.faults[index]
            package = packages[spec.fault]
            if phase == "start":
                active[index] = package.start(spec.target, spec.params)
                emit(spec, "start", spec.target, spec.params)
            elif index in active:
                package.stop(active.pop(index))
                emit(spec, "stop", spec.target, spec.params)
    finally:
        _heal(schedule, packages, active, used, emit)


def _heal(
    schedule: Schedule,
    packages: Mapping[str, FaultPackage],
    active: dict[int, object],
    used: list[str],
    emit: Callable[[FaultSpec, Phase, str, Mapping[str, Any]], None],
) -> None:
    """Stop active faults (latest first) then heal every package used."""
    failures: list[BaseException] = []
    for index in sorted(active, reverse=True):
        spec = schedule.faults[index]
        try:
            packages[spec.fault].stop(active.pop(index))
            emit(spec, "stop", spec.target, spec.params)
        except Exception as exc:  # keep healing the rest
            _log.exception("stopping fault %s on %s failed", spec.fault, spec.target)
            failures.append(exc)
    for name in used:
        try:
            packages[name].heal()
            spec = next(f for f in schedule.faults if f.fault == name)
            emit(spec, "stop", "*", {"final": True})
        except Exception as exc:
            _log.exception("final heal of %s failed", name)
            failures.append(exc)
    if failures:
        raise RuntimeError(f"{len(failures)} heal step(s) failed") from failures[0]
