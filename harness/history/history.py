"""An ordered, validated history and the views checkers need.

Checkers run many passes over the same history, so the views (pairs, pairs
by operation) are computed once, lazily, and shared. A history is immutable:
building one validates it (index equals position, every completion points at
an earlier invoke of the same operation, at most one completion per invoke),
so checkers never have to defend against a malformed one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from typing import Any, TypeVar, overload

from stormproof.harness.history.gcpause import paused_gc
from stormproof.harness.history.op import Op, OpType
from stormproof.harness.history.vocabulary import FAULT

__all__ = ["History", "HistoryError", "Pair", "outcome"]

#: An invoke and its completion, or None when it never completed (the run
#: ended or the process crashed first): the outcome is then unknown (info).
Pair = tuple[Op, Op | None]

T = TypeVar("T")


class HistoryError(ValueError):
    """The ops do not form a well-formed history."""


def outcome(pair: Pair) -> OpType:
    """The completion type of a pair; a missing completion counts as ``info``."""
    completion = pair[1]
    return "info" if completion is None else completion.type


class History(Sequence[Op]):
    """Ops in index order, with pair and per-operation views."""

    def __init__(self, ops: Iterable[Op]) -> None:
        with paused_gc():
            self._ops: tuple[Op, ...] = tuple(ops)
            self._completion_of = self._validate(self._ops)
        self._views: dict[Callable[[History], Any], Any] = {}
        self._merged: dict[tuple[str, ...], list[Pair]] = {}
        self._acked: dict[tuple[str, ...], tuple[Pair, ...]] = {}

    @staticmethod
    def _validate(ops: tuple[Op, ...]) -> dict[int, Op]:
        completion_of: dict[int, Op] = {}
        for position, op in enumerate(ops):
            if op.index != position:
                raise HistoryError(f"op at position {position} has index {op.index}")
            if op.type == "invoke":
                if op.invoke_index is not None:
                    raise HistoryError(f"invoke {position} has an invoke_index")
                continue
            target = op.invoke_index
            if target is None or not 0 <= target < position:
                raise HistoryError(f"completion {position} points at invoke {target!r}")
            invoke = ops[target]
            if invoke.type != "invoke" or invoke.f != op.f:
                raise HistoryError(f"completion {position} ({op.f}) points at op {target} ({invoke.f}, {invoke.type})")
            if target in completion_of:
                raise HistoryError(f"invoke {target} completed twice ({completion_of[target].index}, {position})")
            completion_of[target] = op
        return completion_of

    # -- Sequence -----------------------------------------------------------
    @overload
    def __getitem__(self, index: int) -> Op: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Op]: ...

    def __getitem__(self, index: int | slice) -> Op | Sequence[Op]:
        return self._ops[index]

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops)

    def __repr__(self) -> str:
        return f"History({len(self._ops)} ops)"

    @property
    def ops(self) -> tuple[Op, ...]:
        return self._ops

    # -- views ----------------------------------------------------------------
    def completion(self, invoke: Op) -> Op | None:
        """The completion of ``invoke``, or None if it never completed."""
        return self._completion_of.get(invoke.index)

    def invoke_of(self, completion: Op) -> Op:
        """The invoke a completion answers."""
        if completion.invoke_index is None:
            raise HistoryError(f"op {completion.index} is not a completion")
        return self._ops[completion.invoke_index]

    @cached_property
    def _pair_views(self) -> tuple[tuple[Pair, ...], dict[str, list[Pair]]]:
        """Both pair views in one pass over the ops, sharing their pair tuples."""
        get = self._completion_of.get
        pairs: list[Pair] = []
        append = pairs.append
        grouped: dict[str, list[Pair]] = {}
        bucket_of = grouped.get
        with paused_gc():
            for op in self._ops:
                if op.type == "invoke":
                    pair = (op, get(op.index))
                    append(pair)
                    bucket = bucket_of(op.f)
                    if bucket is None:
                        grouped[op.f] = [pair]
                    else:
                        bucket.append(pair)
            return tuple(pairs), grouped

    def pairs(self) -> tuple[Pair, ...]:
        """Every (invoke, completion-or-None), in invoke order."""
        return self._pair_views[0]

    @property
    def _pairs_by_f(self) -> dict[str, list[Pair]]:
        return self._pair_views[1]

    def grouped(self) -> dict[str, list[Pair]]:
        """Every operation name -> its pairs in invoke order (shared: do not change it); one pass per f is
        cheaper than one pass over everything with a lookup per op."""
        return self._pairs_by_f

    def pairs_of(self, *fs: str) -> list[Pair]:
        """The pairs of the named operations, in invoke order (a new list each call)."""
        return list(self._shared_pairs(fs))

    def _shared_pairs(self, fs: tuple[str, ...]) -> list[Pair]:
        """``pairs_of(*fs)`` without the copy: the shared list (do not change it)."""
        grouped = self._pairs_by_f
        if len(fs) == 1:
            return grouped.get(fs[0], [])
        merged = self._merged.get(fs)
        if merged is None:  # several checkers ask for the same mix (starts, stops, probes): sort it once
            present = [grouped[f] for f in fs if f in grouped]
            if len(present) == 1:  # one of the operations was sent (the usual case): already in invoke order
                merged = present[0]
            else:
                with paused_gc():
                    merged = [pair for pairs in present for pair in pairs]
                    merged.sort(key=lambda pair: pair[0].index)
            self._merged[fs] = merged
        return merged

    def acknowledged_of(self, *fs: str) -> tuple[Pair, ...]:
        """The pairs of the named operations that completed ``ok``, in invoke order; built once per ``fs`` and
        shared by every checker that asks (starts, stops, assigns: five checkers read them)."""
        acked = self._acked.get(fs)
        if acked is None:
            with paused_gc():
                acked = self._acked[fs] = tuple([pair for pair in self._shared_pairs(fs)
                                                 if pair[1] is not None and pair[1].type == "ok"])
        return acked

    def by_f(self, f: str) -> tuple[Op, ...]:
        """Every op (invokes and completions) of operation ``f``, in index order."""
        return tuple(op for op in self._ops if op.f == f)

    @property
    def fs(self) -> frozenset[str]:
        """The operation names present."""
        return frozenset(self._pairs_by_f)

    def view(self, build: Callable[[History], T]) -> T:
        """``build(self)``, computed on the first call and shared by every later one.

        Several checkers need the same index of a history (the deletions per
        appointment, the fault windows, the answers' latencies); each is built
        once per history instead of once per checker. ``build`` must be a pure
        function of the history (it is the cache key), and callers must not
        change what it returns.
        """
        views = self._views
        if build in views:
            return views[build]  # type: ignore[no-any-return]
        with paused_gc():
            built = views[build] = build(self)
        return built

    def faults(self) -> tuple[Op, ...]:
        """The nemesis's fault invocations (injections and heals), in order."""
        return tuple(pair[0] for pair in self._pairs_by_f.get(FAULT, ()))
