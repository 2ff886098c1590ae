"""What a checker says: violations, a verdict per invariant, and the run's verdict.

Following Jepsen's checker composition: ``invalid`` outranks ``unknown``,
which outranks ``valid``, so one broken or crashed checker can never be
averaged away. Safety and liveness verdicts decide the run; SLO verdicts are
ranked the same way but reported apart, because missing a latency target
under faults is a finding, not a correctness bug.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["Kind", "Overall", "Status", "Verdict", "Violation", "merge_status", "overall", "verdict_to_dict"]

Status = Literal["valid", "invalid", "unknown"]
Kind = Literal["safety", "liveness", "slo"]

_RANK: Mapping[str, int] = MappingProxyType({"valid": 0, "unknown": 1, "invalid": 2})


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Violation:
    """One breach of an invariant, with the indices of the ops that show it."""

    invariant: str
    message: str
    ops: tuple[int, ...] = ()
    details: Mapping[str, Any] = field(default_factory=_empty, hash=False)
    #: The command that replays it with the few requests that break it (set by the runner; see stormproof.harness.reproduce).
    reproduce: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"invariant": self.invariant, "message": self.message, "ops": list(self.ops),
               "details": dict(self.details)}
        if self.reproduce is not None:
            out["reproduce"] = self.reproduce
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """A checker's answer for one invariant.

    ``violations`` holds at most ``CheckConfig.max_violations`` of them; the
    full count, and the first, worst and last, are in ``summary``.
    ``error`` is set when the checker crashed or lacked the data to decide.
    """

    invariant: str
    status: Status
    kind: Kind
    violations: tuple[Violation, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=_empty, hash=False)
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.status == "valid"


def verdict_to_dict(verdict: Verdict) -> dict[str, Any]:
    """A JSON-ready dict (for result.json and the report)."""
    return {
        "invariant": verdict.invariant,
        "status": verdict.status,
        "kind": verdict.kind,
        "violations": [violation.to_dict() for violation in verdict.violations],
        "summary": dict(verdict.summary),
        "error": verdict.error,
    }


def merge_status(statuses: Iterable[Status]) -> Status:
    """The worst status: invalid > unknown > valid (valid when there are none)."""
    worst: Status = "valid"
    for status in statuses:
        if status not in _RANK:
            return "unknown"
        if _RANK[status] > _RANK[worst]:
            worst = status
    return worst


@dataclass(frozen=True, slots=True)
class Overall:
    """The run's verdict (safety and liveness) and, apart, the SLO verdict."""

    status: Status
    slo_status: Status
    invalid: tuple[str, ...]
    unknown: tuple[str, ...]
    slo_breaches: tuple[str, ...]


def overall(verdicts: Iterable[Verdict]) -> Overall:
    """Combine verdicts: safety/liveness decide ``status``; SLOs give ``slo_status``."""
    verdicts = list(verdicts)
    correctness = [v for v in verdicts if v.kind != "slo"]
    slos = [v for v in verdicts if v.kind == "slo"]
    return Overall(
        status=merge_status(v.status for v in correctness),
        slo_status=merge_status(v.status for v in slos),
        invalid=tuple(v.invariant for v in correctness if v.status == "invalid"),
        unknown=tuple(v.invariant for v in correctness if v.status == "unknown"),
        slo_breaches=tuple(v.invariant for v in slos if v.status != "valid"),
    )
