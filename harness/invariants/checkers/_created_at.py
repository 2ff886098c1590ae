"""Creation times, judged for no-lost-acknowledged-write: a row's ``created_at`` is when its request ran.

Retention (plan F1) deletes calls by their ``created_at``, and the audit of a
deletion, the order of sessions and the reports a client reads all trust it.
A stamp taken at the wrong moment passes every check of what exists: a
default evaluated once (``default=utcnow()`` for ``default=utcnow``) stamps
every row with the moment the app started, and retention then takes a new
call for an old one once the app has run longer than the policy.

The app's clock need not agree with the load's (another host, a container):
what is judged is that *one* offset between the two clocks puts every row's
stamp within its request, from the first send under its Idempotency-Key (a
retry under the key may have created it then) to its answer, give or take
:data:`TOLERANCE_S`. Each request gives the offset an interval
``[created_at - answered, created_at - sent]``; if no offset lies in all of them
(the latest lower end exceeds the earliest upper end by more than the
tolerance), the two requests giving those ends are cited
(``created-at-off``). Only requests that certainly created their row are
judged: a call submission answered 2xx (each creates its call under its key)
and a session start answered 201 and not replayed. An assign may answer an
assignment an earlier request made, so assignments are not judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import CALL_SUBMIT, STARTS
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Row, Snapshot

__all__ = ["TOLERANCE_S", "check_created_at", "clock_offset"]

#: Seconds by which the offset intervals may fail to meet: the two clocks' drift over a run, and the rounding of a
#: stamp. A stamp off by more than this relative to the others was not taken while its request ran.
TOLERANCE_S = 1.0

#: (operations that create a row, the snapshot table holding it, what the row is called).
_CREATORS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    ((CALL_SUBMIT,), "calls", "call"),
    (tuple(sorted(STARTS)), "recording_sessions", "session"),
)


@dataclass(frozen=True, slots=True)
class _Stamp:
    row: object
    at: float
    sent: float
    answered: float
    ops: tuple[int, int]


def check_created_at(log: ViolationLog, history: History, snapshot: Snapshot) -> int:
    """Judge the created_at of every row a load request certainly created; returns how many were judged (a
    table's one stamp alone is compared with nothing, so it is not counted)."""
    judged = 0
    for names, table, noun in _CREATORS:
        rows: tuple[Row, ...] | None = getattr(snapshot, table)
        if not rows:
            continue
        stamps = _stamps(history, names, {row.get("id"): row.get("created_at") for row in rows})
        if len(stamps) < 2:
            continue
        judged += len(stamps)
        late = max(stamps, key=lambda s: s.at - s.answered)  # the offset must be at least its at - answered
        early = min(stamps, key=lambda s: s.at - s.sent)  # ... and at most its at - sent
        if (late.at - late.answered) - (early.at - early.sent) <= TOLERANCE_S:
            continue
        log.add("created-at-off", f"{noun} {late.row}'s request was answered {_apart(late.answered - early.sent)} "
                f"{noun} {early.row}'s was sent, yet its created_at is {_apart(late.at - early.at)} {early.row}'s: "
                f"no one clock puts both stamps within their requests (tolerance {TOLERANCE_S:g} s)",
                early.ops + late.ops, table=table, rows=[str(early.row), str(late.row)])
    return judged


def clock_offset(history: History, snapshot: Snapshot) -> tuple[float, float] | None:
    """The offsets (app clock minus load clock, in seconds) that put every certainly-created row's created_at
    within its request: ``(lowest, highest)``; None when no request gives one, or when none fits them all
    beyond :data:`TOLERANCE_S` (``created-at-off`` says so). Other rules use it to place an app's stamp
    (a task's start and end) on the load's clock."""
    lowest, highest = float("-inf"), float("inf")
    for names, table, _ in _CREATORS:
        rows: tuple[Row, ...] | None = getattr(snapshot, table)
        if not rows:
            continue
        for stamp in _stamps(history, names, {row.get("id"): row.get("created_at") for row in rows}):
            lowest, highest = max(lowest, stamp.at - stamp.answered), min(highest, stamp.at - stamp.sent)
    if lowest == float("-inf") or lowest - highest > TOLERANCE_S:
        return None
    return (lowest, highest) if lowest <= highest else (highest, lowest)


def _apart(seconds: float) -> str:
    return f"{abs(seconds):.3f} s {'after' if seconds >= 0 else 'before'}"


def _stamps(history: History, names: tuple[str, ...], created: Mapping[object, object]) -> list[_Stamp]:
    first: dict[tuple[object, object], float] = {}  # (tenant, key) -> the first send's wall time under it
    for invoke, _ in history.pairs_of(*names):
        key = invoke.args.get("idempotency_key")
        if key is not None and invoke.wall:
            at = (invoke.tenant, key)
            first[at] = min(first.get(at, invoke.wall), invoke.wall)
    out = []
    for invoke, completion in history.acknowledged_of(*names):
        assert completion is not None
        if not _created(invoke, completion):
            continue
        row = completion.result.get("id")
        at = created.get(row)
        if not isinstance(at, (int, float)) or not invoke.wall or not completion.wall:
            continue
        key = invoke.args.get("idempotency_key")
        sent = first.get((invoke.tenant, key), invoke.wall) if key is not None else invoke.wall
        out.append(_Stamp(row, float(at), sent, completion.wall, (invoke.index, completion.index)))
    return out


def _created(invoke: Op, completion: Op) -> bool:
    """Whether this acknowledged request certainly created the row its answer names."""
    if invoke.f == CALL_SUBMIT:
        return True
    return completion.status == 201 and not completion.result.get("replayed")
