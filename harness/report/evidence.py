"""The operations that prove a violation, and the operations around them.

A violation names op indices (an invoke, a completion, or both of one
call); the reviewer needs each call whole: invoke and completion, times,
tenant, ids, idempotency key, status and the answer's fields. Around the
cited calls, the *neighbourhood* is every call on the same subject (the
same appointment, session, Shunya job, target id or idempotency key) near
the same time: what a reviewer would otherwise grep the history for.

Neighbourhoods of all violations are found in one pass over the slices of
the history around the cited calls (bisected by time), because a long run
has a million ops and a hundred violations.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stormproof.harness.history import History, Op, Pair
from stormproof.harness.history.gcpause import paused_gc
from stormproof.harness.invariants.verdict import Violation

__all__ = ["SUBJECT_FIELDS", "EvidenceOp", "Neighbourhood", "cited_pairs", "neighbourhoods"]

#: Fields (in args, result or violation details) naming what a call acts on.
SUBJECT_FIELDS: tuple[str, ...] = (
    "appointment_id", "session_id", "job_id", "shunya_job_id", "target_id", "idempotency_key",
)
# Where each subject can appear in an op: (where, field).
_OP_FIELDS: tuple[tuple[str, str], ...] = (
    ("args", "appointment_id"), ("args", "session_id"), ("args", "job_id"), ("args", "target_id"),
    ("args", "idempotency_key"), ("result", "id"), ("result", "appointment_id"),
)
# Detail keys whose values are lists of subject ids.
_LIST_DETAILS = ("sessions", "ids")

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class EvidenceOp:
    """One call cited by a violation: its invoke, its completion (None if it never
    completed) and which of their indices the violation cited."""

    invoke: Op
    completion: Op | None
    cited: tuple[int, ...]

    @property
    def indices(self) -> tuple[int, ...]:
        return (self.invoke.index,) if self.completion is None else (self.invoke.index, self.completion.index)


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    """Calls to draw on one violation's timeline, in invoke order, and its time window (s)."""

    subject: str
    pairs: tuple[Pair, ...]
    t0: float
    t1: float
    truncated: int


def cited_pairs(history: History, violation: Violation) -> tuple[tuple[EvidenceOp, ...], tuple[int, ...]]:
    """The calls a violation cites, one per call, in index order; and the cited indices
    that are not in the history (a result.json re-rendered against another history)."""
    calls: dict[int, list[int]] = {}
    missing: list[int] = []
    for index in violation.ops:
        if not 0 <= index < len(history):
            missing.append(index)
            continue
        op = history[index]
        invoke = op if op.type == "invoke" else history.invoke_of(op)
        calls.setdefault(invoke.index, []).append(index)
    out = tuple(EvidenceOp(history[i], history.completion(history[i]), tuple(sorted(cited)))
                for i, cited in sorted(calls.items()))
    return out, tuple(missing)


def _subjects(violation: Violation, calls: Sequence[EvidenceOp]) -> dict[str, str]:
    """Subject value -> the field that named it (appointment_id, ...)."""
    found: dict[str, str] = {}
    details = violation.details
    for field in SUBJECT_FIELDS:
        value = details.get(field)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            found.setdefault(str(value), field)
    for key in _LIST_DETAILS:
        values = details.get(key)
        if isinstance(values, (list, tuple)):
            for value in values:
                if isinstance(value, (str, int)):
                    found.setdefault(str(value), "session_id" if key == "sessions" else "id")
    for call in calls:
        for op in (call.invoke, call.completion):
            if op is None:
                continue
            for where, field in _OP_FIELDS:
                value = (op.args if where == "args" else op.result).get(field)
                if isinstance(value, (str, int)) and not isinstance(value, bool):
                    found.setdefault(str(value), field if where == "args" else f"result {field}")
    return found


def _describe(subjects: Mapping[str, str]) -> str:
    order = {name: rank for rank, name in enumerate(
        ("appointment_id", "result appointment_id", "shunya_job_id", "job_id", "session_id", "target_id",
         "idempotency_key"))}
    ranked = sorted(subjects.items(), key=lambda item: (order.get(item[1], 99), item[0]))
    shown = [f"{field.replace('result ', '').replace('_id', '').replace('_', ' ')} {value}"
             for value, field in ranked[:3]]
    return ", ".join(shown) + (f" and {len(ranked) - 3} more" if len(ranked) > 3 else "")


def neighbourhoods(
    history: History,
    violations: Sequence[Violation],
    *,
    limit: int = 40,
    pad_s: float = 2.0,
) -> list[Neighbourhood]:
    """For each violation, the calls on its subjects within ``pad_s`` of the cited calls.

    Cited calls are always kept; others, nearest in time first, up to
    ``limit`` calls in all (``truncated`` says how many were left out).
    """
    cited = [cited_pairs(history, violation)[0] for violation in violations]
    subjects = [_subjects(violation, calls) for violation, calls in zip(violations, cited)]
    wanted = set().union(*subjects) if subjects else set()
    spans = []
    for calls in cited:
        if calls:
            spans.append((min(c.invoke.time_ns for c in calls) - int(pad_s * _NS),
                          max((c.completion or c.invoke).time_ns for c in calls) + int(pad_s * _NS)))
    by_subject: dict[str, list[Pair]] = {}
    if wanted:
        with paused_gc():
            _index_subjects(history, wanted, by_subject, _index_ranges(history, spans))

    out: list[Neighbourhood] = []
    for calls, found in zip(cited, subjects):
        if calls:
            start = min(c.invoke.time_ns for c in calls) / _NS
            end = max((c.completion or c.invoke).time_ns for c in calls) / _NS
        else:
            start = end = 0.0
        low, high = start - pad_s, end + pad_s
        own = {c.invoke.index for c in calls}
        seen: dict[int, Pair] = {c.invoke.index: (c.invoke, c.completion) for c in calls}
        for value in found:
            for pair in by_subject.get(value, ()):
                invoke, completion = pair
                finish = (completion or invoke).time_ns / _NS
                if invoke.time_ns / _NS <= high and finish >= low:
                    seen.setdefault(invoke.index, pair)
        others = sorted((i for i in seen if i not in own),
                        key=lambda i: abs(seen[i][0].time_ns / _NS - (start + end) / 2))
        keep = own | set(others[: max(0, limit - len(own))])
        pairs = tuple(seen[i] for i in sorted(keep))
        if pairs:
            t0 = min(p[0].time_ns for p in pairs) / _NS
            t1 = max((p[1] or p[0]).time_ns for p in pairs) / _NS
        else:
            t0, t1 = low, high
        margin = max(0.05, (t1 - t0) * 0.04)
        out.append(Neighbourhood(_describe(found) or "the cited operations", pairs, max(0.0, t0 - margin),
                                 t1 + margin, len(seen) - len(keep)))
    return out


def _index_ranges(history: History, spans: Sequence[tuple[int, int]]) -> list[range]:
    """The op index ranges holding every op whose time is in one of ``spans`` (ns), merged.

    A recorder writes ops in time order, so a window of a long run is a
    short slice found by bisection, and a report never rescans a million
    ops for a few seconds of neighbours. A history not in time order (built
    by hand) is scanned whole.
    """
    size = len(history)
    times = [op.time_ns for op in history]
    if not spans or any(a > b for a, b in zip(times, times[1:])):
        return [range(size)]
    ranges: list[range] = []
    for low, high in sorted(spans):
        start, stop = bisect_left(times, low), bisect_right(times, high)
        if ranges and start <= ranges[-1].stop:
            ranges[-1] = range(ranges[-1].start, max(stop, ranges[-1].stop))
        else:
            ranges.append(range(start, stop))
    return ranges


def _index_subjects(history: History, wanted: set[str], by_subject: dict[str, list[Pair]],
                    ranges: Sequence[range]) -> None:
    """Every call with an op in ``ranges`` naming a wanted subject, by subject, in invoke order.

    A call counts when its invoke or its completion lies in a range; a call
    spanning a whole window (invoked before it, answered after it) is not
    a neighbour, the price of not scanning the whole history.
    """
    seen: set[int] = set()
    found: list[tuple[int, str, Pair]] = []
    for indices in ranges:
        for position in indices:
            op = history[position]
            if op.type == "invoke":
                invoke = op
            else:
                invoke = history.invoke_of(op)
            if invoke.index in seen:
                continue
            seen.add(invoke.index)
            completion = history.completion(invoke)
            hit: set[str] = set()
            for one in (invoke, completion):
                if one is None:
                    continue
                for where, field in _OP_FIELDS:
                    value = (one.args if where == "args" else one.result).get(field)
                    if value is not None and type(value) is not bool:
                        text = value if type(value) is str else str(value)
                        if text in wanted:
                            hit.add(text)
            for text in hit:
                found.append((invoke.index, text, (invoke, completion)))
    found.sort(key=lambda item: item[0])
    for _, text, pair in found:
        by_subject.setdefault(text, []).append(pair)
