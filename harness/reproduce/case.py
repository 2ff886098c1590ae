"""A reproduction case: the few steps and faults that break one invariant, as plain data.

A case is what selection produces, what the replay plays, what shrinking
shrinks and what the pytest file embeds, so it is one frozen value with one
JSON form (``to_dict``/``case_from_dict``). Ids are kept as the run saw them;
``refs`` says where each one comes from in a fresh stack, because every
replay seeds new tenants and gets new ids:

- ``t1`` -- the company id of the run's second tenant;
- ``t1.appointment_ids.0`` -- a seeded id (any list of the seeded tenant, or ``manager_id``);
- ``step:35.id`` -- a field of the answer to step 35 (the step that created it);
- ``key:2`` -- an Idempotency-Key: a new one per replay, equal where the run's were equal.

An id with no ref (a probe's made-up missing id) is sent as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Case", "CaseFault", "STEP_REF", "Step", "case_from_dict"]

#: A ref to what an earlier step's answer made: ``step:<index>.<field>`` (e.g. ``step:27.id``).
STEP_REF = re.compile(r"^step:(\d+)\.(\w+)$")


@dataclass(frozen=True, slots=True)
class Step:
    """One request of the run: ``index`` is its invoke's index in the run's history."""

    index: int
    group: int
    process: str
    f: str
    tenant: str | None
    args: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #: What the run saw: HTTP status (0: no answer) and the completion type.
    status: int | None = None
    outcome: str = "info"
    #: Steps of its group the run had answered before it sent this one: the replay sends it after their
    #: answers, so the group keeps the run's order where there was one and only overlapping requests race.
    after: tuple[int, ...] = ()
    #: Seconds the run waited between the answer to an earlier request with the same Idempotency-Key and
    #: this one (0: none, or too short to matter): the replay waits as long, as a key's TTL is the point.
    #: For the stub's own delivery (``shunya.deliver``): how long after the job's creation the run's stub
    #: completed it (see select.py's ``_completion``).
    pause_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "group": self.group, "process": self.process, "f": self.f,
                "tenant": self.tenant, "args": _plain(self.args), "status": self.status, "outcome": self.outcome,
                "after": list(self.after), "pause_s": self.pause_s}


@dataclass(frozen=True, slots=True)
class CaseFault:
    """A fault of the run, in place while the listed groups are played."""

    fault: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    groups: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.fault}@{self.target}"

    def to_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "target": self.target, "params": _plain(self.params),
                "groups": list(self.groups)}


@dataclass(frozen=True, slots=True)
class Case:
    """What to replay, on which stack, and the invariant that must break."""

    invariant: str
    steps: tuple[Step, ...]
    faults: tuple[CaseFault, ...] = ()
    refs: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: The run's stack: tenants, reps, appointments, app/task workers, env (race delays...), shunya.
    stack: Mapping[str, Any] = field(default_factory=dict, hash=False)
    weakenings: tuple[str, ...] = ()
    app_command: tuple[str, ...] | None = None
    #: Where it came from: run directory, scenario, violation number, message and kind (``details["type"]``).
    source: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def groups(self) -> list[list[Step]]:
        """The steps by group, groups in order; steps of one group are sent together."""
        out: dict[int, list[Step]] = {}
        for step in sorted(self.steps, key=lambda s: (s.group, s.index)):
            out.setdefault(step.group, []).append(step)
        return [out[g] for g in sorted(out)]

    def size(self) -> tuple[int, int]:
        """(requests, faults)."""
        return len(self.steps), len(self.faults)

    def with_parts(self, steps: tuple[Step, ...], faults: tuple[CaseFault, ...]) -> "Case":
        """The same case with only these steps and faults (and only the refs they use)."""
        return replace(self, steps=tuple(sorted(steps, key=lambda s: s.index)), faults=tuple(faults)).pruned()

    def pruned(self) -> "Case":
        """The case with only the refs its steps use (tenants, ids in args and paths, keys)."""
        used: set[str] = set()
        for step in self.steps:
            if step.tenant:
                used.add(step.tenant)
            for text in _texts(step.args):
                used.add(text)
                used.update(original for original in self.refs if len(original) > 8 and original in text)
        return replace(self, refs={k: v for k, v in self.refs.items() if k in used})

    def to_dict(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant, "steps": [s.to_dict() for s in self.steps],
            "faults": [f.to_dict() for f in self.faults], "refs": dict(self.refs), "stack": _plain(self.stack),
            "weakenings": list(self.weakenings),
            "app_command": list(self.app_command) if self.app_command else None, "source": _plain(self.source),
        }


def case_from_dict(data: Mapping[str, Any]) -> Case:
    """The case ``Case.to_dict`` wrote (the pytest file embeds it)."""
    return Case(
        invariant=data["invariant"],
        steps=tuple(Step(s["index"], s["group"], s["process"], s["f"], s.get("tenant"), dict(s.get("args") or {}),
                         s.get("status"), s.get("outcome", "info"), tuple(s.get("after") or ()),
                         float(s.get("pause_s") or 0.0))
               for s in data["steps"]),
        faults=tuple(CaseFault(f["fault"], f["target"], dict(f.get("params") or {}), tuple(f.get("groups") or ()))
                     for f in data.get("faults") or ()),
        refs=dict(data.get("refs") or {}),
        stack=dict(data.get("stack") or {}),
        weakenings=tuple(data.get("weakenings") or ()),
        app_command=tuple(data["app_command"]) if data.get("app_command") else None,
        source=dict(data.get("source") or {}),
    )


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [t for item in value.values() for t in _texts(item)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [t for item in value for t in _texts(item)]
    return []


def _plain(value: Any) -> Any:
    """A JSON-ready copy (read-only mappings, tuples and frozensets of the history become dicts and lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    return value
