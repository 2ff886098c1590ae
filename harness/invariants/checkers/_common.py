"""Small helpers the checkers share: reading pairs the same way everywhere."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from stormproof.harness.history import History, Op, Pair
from stormproof.harness.history.vocabulary import APPOINTMENT_DELETE, DELETION_CONFIRM, DELETION_REQUEST
from stormproof.harness.invariants.timeline import INF, Undoers

__all__ = ["AppointmentKey", "acknowledged", "api_kills", "deleters", "first_sent", "possible_span", "write_began"]

#: An appointment as the caller names it: (tenant, appointment id).
AppointmentKey = tuple[str | None, object]


def acknowledged(pairs: Iterable[Pair]) -> list[Pair]:
    """The pairs that completed ``ok`` (a list: faster to build than a generator is to walk)."""
    return [pair for pair in pairs if pair[1] is not None and pair[1].type == "ok"]


def possible_span(pair: Pair) -> tuple[float, float] | None:
    """When an operation may have taken effect: (invoke time, completion time or INF).

    None for a ``fail``: it certainly had no effect. An ``info`` or a missing
    completion may take effect at any time after the invoke.
    """
    invoke, completion = pair
    if completion is None or completion.type == "info":
        return (invoke.time_ns, INF)
    if completion.type == "fail":
        return None
    return (invoke.time_ns, completion.time_ns)


def deleters(history: History) -> dict[AppointmentKey, Undoers]:
    """Appointment deletions that may have taken effect, per appointment (they cascade).

    Both kinds: ``DELETE /appointments/{id}`` and a confirmed deletion request of scope
    appointment (plan F2), whose target is named by the request the confirmation refers to.
    Built once per history and shared by the checkers that ask (do not change it).
    """
    return history.view(_deleters)


def _deleters(history: History) -> dict[AppointmentKey, Undoers]:
    spans: dict[AppointmentKey, list[tuple[float, float]]] = defaultdict(list)
    for pair in history.pairs_of(APPOINTMENT_DELETE):
        span = possible_span(pair)
        if span is not None:
            spans[(pair[0].tenant, pair[0].args.get("appointment_id"))].append(span)
    targets = {str(completion.result.get("id")): (invoke.tenant, invoke.args.get("target_id"))
               for invoke, completion in history.acknowledged_of(DELETION_REQUEST)
               if invoke.args.get("scope") == "appointment"}
    for pair in history.pairs_of(DELETION_CONFIRM):
        target = targets.get(str(pair[0].args.get("deletion_id")))
        span = possible_span(pair)
        # A wrong-token confirmation deletes nothing when the app keeps F2; when it does not,
        # deletion-audited says so, and the rows it took are excused here like any deletion's.
        if target is not None and span is not None:
            spans[target].append(span)
    return {key: Undoers(value) for key, value in spans.items()}


def write_began(completion: Op, invoke: Op) -> float:
    """The earliest time the effect an ``ok`` answer reports can have happened.

    A fresh answer reports an effect made during its own call; a replayed one
    (``Idempotent-Replayed``) reports an effect made by an earlier call, at a
    time we do not know, so it may be older than anything in the history.
    """
    return -INF if completion.result.get("replayed") else invoke.time_ns


def api_kills(history: History) -> list[int]:
    """The kill faults that may have taken an API process (its counters, its last log lines): every kill but those
    of a process that serves no HTTP (PostgreSQL, Redis, a task worker)."""
    return [op.index for op in history.faults() if op.type == "invoke" and "kill" in str(op.args.get("fault", ""))
            and not str(op.args.get("target", "")).startswith(("postgres", "redis", "worker"))]


def first_sent(history: History, *names: str) -> dict[tuple[object, object], float]:
    """(tenant, Idempotency-Key) -> when the first request of ``names`` under it was sent: a retry or a replay
    under a key may have acted as early as that, not only when it was itself sent."""
    first: dict[tuple[object, object], float] = {}
    for invoke, _ in history.pairs_of(*names):
        key = invoke.args.get("idempotency_key")
        if key is not None:
            at = (invoke.tenant, key)
            first[at] = min(first.get(at, INF), invoke.time_ns)
    return first
