"""Collecting a checker's violations into a verdict, Jepsen-style.

Large histories can break an invariant thousands of times; a verdict keeps
the first ``max_violations`` and summarises all of them per violation type
with count, first, worst and last (as Jepsen's bank checker does), so a
report stays small and still shows the extent and the extreme case.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stormproof.harness.invariants.config import CheckConfig
from stormproof.harness.invariants.verdict import Kind, Status, Verdict, Violation

__all__ = ["ViolationLog"]


def _brief(violation: Violation, badness: float) -> dict[str, Any]:
    return {"message": violation.message, "ops": list(violation.ops), "badness": badness}


class ViolationLog:
    """Accumulates violations and missing evidence for one invariant."""

    def __init__(self, invariant: str, kind: Kind, config: CheckConfig) -> None:
        self.invariant = invariant
        self.kind = kind
        self._limit = config.max_violations
        self._kept: list[Violation] = []
        self._by_type: dict[str, dict[str, Any]] = {}
        self._count = 0
        self._missing: list[str] = []

    @property
    def count(self) -> int:
        return self._count

    def add(self, type: str, message: str, ops: Iterable[int] = (), *, badness: float = 0.0,
            **details: Any) -> None:
        """Record a violation of sub-type ``type``; ``badness`` ranks the worst one."""
        violation = Violation(self.invariant, message, tuple(sorted(set(ops))), {"type": type, **details})
        self._count += 1
        if len(self._kept) < self._limit:
            self._kept.append(violation)
        stats = self._by_type.get(type)
        brief = _brief(violation, badness)
        if stats is None:
            self._by_type[type] = {"count": 1, "first": brief, "worst": brief, "last": brief}
        else:
            stats["count"] += 1
            stats["last"] = brief
            if badness > stats["worst"]["badness"]:
                stats["worst"] = brief

    def cannot(self, reason: str) -> None:
        """Some evidence is missing: unless something is invalid, the verdict is unknown."""
        self._missing.append(reason)

    def verdict(self, **summary: Any) -> Verdict:
        status: Status = "invalid" if self._count else ("unknown" if self._missing else "valid")
        full = {"violations": self._count, "by_type": self._by_type, **summary}
        if self._missing:
            full["missing"] = list(self._missing)
        return Verdict(
            invariant=self.invariant,
            status=status,
            kind=self.kind,
            violations=tuple(self._kept),
            summary=full,
            error="; ".join(self._missing) if self._missing else None,
        )
