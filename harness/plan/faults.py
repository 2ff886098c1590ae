"""Faults as typed data: one model per fault kind, with its params and their ranges.

The names and params are those the fault packages put on the wire
(``harness/faults/packages.py``, ``harness/faults/toxics/*.py``), with
Toxiproxy's semantics: times in milliseconds (``slicer.delay`` in
microseconds), ``rate`` in KB/s, ``stream`` the direction and ``toxicity``
the share of connections hit. ``down`` disables a link; ``kill`` (kill -9,
restarted when the fault ends) and ``pause`` (SIGSTOP, then SIGCONT) act on
processes and take no params: their duration is the downtime.

A fault of the schedule (``[[faults]]``) is timed (``at``, ``duration``); a
template of ``[random_faults]`` is not, and may list several targets to draw
from. Both are the same kinds, validated by the same params models, so a typo
in a template is caught as early as one in the schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, StrictInt, TypeAdapter, create_model, field_validator, model_validator

from ..faults.packages import TOXIC_TYPES
from ..faults.schedule import FaultSpec, Schedule
from .base import Name, NonNegFloat, NonNegInt, PlanModel, PosFloat

__all__ = [
    "FAULT_KINDS",
    "NETWORK_FAULTS",
    "PROCESS_FAULTS",
    "PARAMS",
    "Fault",
    "FaultTemplate",
    "RandomFaults",
]

Toxicity = Annotated[float, Field(ge=0, le=1, strict=True)]


class NoParams(PlanModel):
    """``down``, ``kill`` and ``pause`` take no params: the fault's duration says it all."""


class ToxicParams(PlanModel):
    """What every toxic accepts: the direction it acts on, and the share of connections it hits."""

    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: Toxicity = 1.0


class LatencyParams(ToxicParams):
    latency: NonNegInt = 0  # ms added to each chunk
    jitter: NonNegInt = 0  # ms, uniform +/-


class BandwidthParams(ToxicParams):
    rate: NonNegInt = 0  # KB/s; 0 is unlimited


class SlowCloseParams(ToxicParams):
    delay: NonNegInt = 0  # ms before the close goes on


class TimeoutParams(ToxicParams):
    timeout: NonNegInt = 0  # ms before the connection closes; 0: held open, data dropped


class ResetPeerParams(ToxicParams):
    timeout: NonNegInt = 0  # ms before the TCP reset


class SlicerParams(ToxicParams):
    average_size: NonNegInt = 0  # bytes
    size_variation: NonNegInt = 0  # bytes, smaller than average_size
    delay: NonNegInt = 0  # microseconds between pieces

    @model_validator(mode="after")
    def _variation_below_average(self) -> SlicerParams:
        if self.average_size > 0 and self.size_variation >= self.average_size:
            raise ValueError(f"size_variation ({self.size_variation}) must be smaller than average_size "
                             f"({self.average_size})")
        return self


class LimitDataParams(ToxicParams):
    bytes: NonNegInt = 0  # per connection, then closed


#: Fault kind -> its params model. The one table of fault names.
PARAMS: Mapping[str, type[PlanModel]] = {
    "latency": LatencyParams,
    "bandwidth": BandwidthParams,
    "slow_close": SlowCloseParams,
    "timeout": TimeoutParams,
    "reset_peer": ResetPeerParams,
    "slicer": SlicerParams,
    "limit_data": LimitDataParams,
    "down": NoParams,
    "kill": NoParams,
    "pause": NoParams,
}
NETWORK_FAULTS: tuple[str, ...] = (*TOXIC_TYPES, "down")
PROCESS_FAULTS: tuple[str, ...] = ("kill", "pause")
FAULT_KINDS: tuple[str, ...] = (*NETWORK_FAULTS, *PROCESS_FAULTS)
assert set(FAULT_KINDS) == set(PARAMS), "every fault package needs a params model"


class TimedFault(PlanModel):
    """``fault`` on ``target`` from ``at`` seconds into the run, for ``duration`` seconds."""

    at: NonNegFloat
    duration: PosFloat
    target: Name

    @property
    def end(self) -> float:
        return self.at + self.duration

    def wire_params(self) -> dict[str, Any]:
        """The params as the fault package takes them (defaults included: the plan as run)."""
        return dict(getattr(self, "params").model_dump())

    def to_spec(self) -> FaultSpec:
        """The schedule entry ``run_schedule`` plays (a conversion, not a parse: this is already valid)."""
        return FaultSpec(self.at, self.duration, getattr(self, "fault"), self.target, self.wire_params())


class TemplateFault(PlanModel):
    """A random fault's template: kind, params, and one target or a list to draw from."""

    target: Annotated[tuple[Name, ...], Field(min_length=1)]

    @field_validator("target", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @property
    def targets(self) -> tuple[str, ...]:
        return self.target


def _kinds(base: type[PlanModel]) -> Any:
    """One model per kind (``fault`` fixed, ``params`` its model), as a union pydantic picks by ``fault``.

    Built from :data:`PARAMS`, so a new fault kind is one params model and one
    line there; the schedule and the random templates get it alike.
    """
    members = tuple(
        create_model(f"{name}", __base__=base, __doc__=base.__doc__,
                     fault=(Literal[name], ...), params=(params, params()))  # type: ignore[call-overload]
        for name, params in PARAMS.items()
    )
    return Annotated[Union[members], Field(discriminator="fault")]  # noqa: UP007 - a runtime tuple


if TYPE_CHECKING:
    Fault = TimedFault
    FaultTemplate = TemplateFault
else:
    Fault = _kinds(TimedFault)
    FaultTemplate = _kinds(TemplateFault)

_FAULT = TypeAdapter(Fault)


class RandomFaults(PlanModel):
    """``count`` faults drawn from ``templates`` at seeded random times (``Schedule.random``)."""

    seed: StrictInt | None = None  # default: the run's seed
    templates: Annotated[tuple[FaultTemplate, ...], Field(min_length=1)]
    count: NonNegInt = 1
    min_duration: PosFloat = 1.0
    max_duration: PosFloat = 3.0
    horizon: PosFloat | None = None  # default: the run's duration

    @model_validator(mode="after")
    def _durations_ordered(self) -> RandomFaults:
        if self.min_duration > self.max_duration:
            raise ValueError(f"min_duration ({self.min_duration}) is above max_duration ({self.max_duration})")
        return self

    def draw(self, run_seed: int, run_duration: float) -> tuple[Fault, ...]:
        """The drawn faults: the same seed always gives the same ones."""
        drawn = Schedule.random(
            self.seed if self.seed is not None else run_seed,
            [{"fault": t.fault, "target": list(t.targets), "params": t.params.model_dump()}  # type: ignore[attr-defined]
             for t in self.templates],
            horizon=self.horizon or run_duration, count=self.count,
            min_duration=self.min_duration, max_duration=self.max_duration,
        )
        return tuple(_FAULT.validate_python(spec.to_dict()) for spec in drawn.faults)


