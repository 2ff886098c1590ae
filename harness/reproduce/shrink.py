"""Shrinking: the smallest set of requests and faults that still reproduces, by delta debugging.

Zeller and Hildebrandt's ddmin, on the case's parts (each request, each
fault): split the parts into ``n`` chunks; try removing each chunk; keep the
first removal that still reproduces at the stated rate and go on with the
rest, else split finer; stop at single parts or when the time budget is
spent (the best case so far is kept, never a worse one). A candidate that
leaves no request is never tried. Requests whose ids came from a removed
request are kept and simply meet a missing id (a fresh one nothing made:
replay.py ``_unmade``), so "still reproduces" is judged on what was actually
sent.

Faults are shrunk first: a fault costs seconds of every attempt it covers
and is the part a reader most needs to know about ("no fault was needed").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from stormproof.harness.history.vocabulary import CONSENT_GRANT

from .case import STEP_REF, Case, CaseFault, Step, _texts

__all__ = ["ShrinkResult", "loosened", "shrink"]

Part = Step | CaseFault


@dataclass
class ShrinkResult:
    case: Case
    removed_steps: list[Step] = field(default_factory=list)
    removed_faults: list[CaseFault] = field(default_factory=list)
    tests: int = 0
    seconds: float = 0.0
    out_of_time: bool = False


def loosened(case: Case) -> Case | None:
    """The case with the requests the violation cites sent as their group starts, or None if nothing changes.

    A group keeps the run's order (``Step.after``: each request waits for the answers the run had given
    before it was sent), which is right for preconditions and wrong for a race. In a session-start-storm
    run, a legacy start raced a session start that had been in flight for 2.6 s under load, and by the
    time it was sent the run had answered eleven other requests of the group; the replay, waiting for
    those eleven, sent it long after the session start was answered: 0 of 5 reproduced
    (legacy-start-lock). Here a cited request waits only for what it needs: the requests whose answers
    made an id it uses (``step:N`` refs) and the consents granted before it.
    """
    cited = {int(i) for i in case.source.get("cited") or ()}
    kinds = {step.index: step.f for step in case.steps}
    changed = False
    steps = []
    for step in case.steps:
        if step.index in cited and step.after:
            makers = {int(m.group(1)) for text in _texts(step.args)
                      if (ref := case.refs.get(text)) and (m := STEP_REF.match(ref))}
            keep = tuple(i for i in step.after if i in makers or kinds.get(i) == CONSENT_GRANT)
            if keep != step.after:
                step, changed = replace(step, after=keep), True
        steps.append(step)
    return replace(case, steps=tuple(steps)) if changed else None


def _ddmin(parts: list[Part], keep: list[Part], test: Callable[[list[Part]], bool], deadline: float,
           counter: list[int], *, allow_empty: bool) -> tuple[list[Part], bool]:
    """The parts of ``parts`` that ``test`` (given them plus ``keep``) still needs; True if out of time."""
    n = 2
    while len(parts) >= 1:
        if time.monotonic() > deadline:
            return parts, True
        size = max(1, len(parts) // n)
        chunks = [parts[i:i + size] for i in range(0, len(parts), size)]
        for chunk in chunks:
            rest = [p for p in parts if p not in chunk]
            if not rest and not allow_empty:
                continue
            if time.monotonic() > deadline:
                return parts, True
            counter[0] += 1
            if test(rest + keep):
                parts = rest
                n = max(n - 1, 2)
                break
        else:
            if size == 1:
                return parts, False
            n = min(len(parts), n * 2)
        if not parts:
            return parts, False
    return parts, False


def shrink(case: Case, reproduces: Callable[[Case], bool], *, budget_s: float) -> ShrinkResult:
    """Shrink ``case`` while ``reproduces(candidate)`` holds, within ``budget_s`` seconds."""
    began = time.monotonic()
    deadline = began + budget_s
    counter = [0]

    def as_case(parts: list[Part]) -> Case:
        steps = tuple(p for p in parts if isinstance(p, Step))
        faults = tuple(p for p in parts if isinstance(p, CaseFault))
        return case.with_parts(steps, faults)

    def test(parts: list[Part]) -> bool:
        return reproduces(as_case(parts))

    faults, late = _ddmin(list(case.faults), list(case.steps), test, deadline, counter, allow_empty=True)
    steps: list[Part] = list(case.steps)
    if not late:
        steps, late = _ddmin(steps, list(faults), test, deadline, counter, allow_empty=False)
    small = as_case(list(steps) + list(faults))
    return ShrinkResult(
        case=small,
        removed_steps=[s for s in case.steps if s not in small.steps],
        removed_faults=[f for f in case.faults if f not in small.faults],
        tests=counter[0], seconds=time.monotonic() - began, out_of_time=late,
    )
