"""Merging the history files of several processes into one history.

Locust in master/worker mode gives one recorder, and so one file, per
worker. Each file is in its own time order; merged, ops are ordered by
``time_ns`` (all recorders of a run share one monotonic origin), ties broken
by the source's position in the argument list and then by original index, so
the merge is deterministic. Indices are renumbered and every completion's
``invoke_index`` is remapped to its invoke's new index. Process names must be
unique across sources (e.g. prefixed by the worker).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from stormproof.harness.history.gcpause import paused_gc
from stormproof.harness.history.history import History, HistoryError
from stormproof.harness.history.op import Op
from stormproof.harness.history.storage import read_ops

__all__ = ["merge_histories"]


def merge_histories(sources: Iterable[str | os.PathLike[str] | History]) -> History:
    """One history from several files (or already-loaded histories)."""
    with paused_gc():
        return _merge(sources)


def _merge(sources: Iterable[str | os.PathLike[str] | History]) -> History:
    keyed: list[tuple[int, int, int, Op]] = []
    for source_number, source in enumerate(sources):
        ops = source.ops if isinstance(source, History) else read_ops(source)
        keyed.extend((op.time_ns, source_number, op.index, op) for op in ops)
    keyed.sort(key=lambda item: item[:3])
    new_index: dict[tuple[int, int], int] = {}
    merged: list[Op] = []
    append = merged.append
    for position, (_, source_number, old_index, op) in enumerate(keyed):
        new_index[(source_number, old_index)] = position
        if op.invoke_index is None:
            append(op if op.index == position else Op(
                position, op.type, op.process, op.f, op.tenant, op.args, op.status, op.result, op.error,
                op.time_ns, op.wall, None))
            continue
        invoke_position = new_index.get((source_number, op.invoke_index))
        if invoke_position is None:
            raise HistoryError(
                f"source {source_number}: completion {old_index} is ordered before its invoke {op.invoke_index}"
            )
        if op.index == position and op.invoke_index == invoke_position:
            append(op)
        else:  # positional: several times cheaper than dataclasses.replace, for millions of ops
            append(Op(position, op.type, op.process, op.f, op.tenant, op.args, op.status, op.result, op.error,
                      op.time_ns, op.wall, invoke_position))
    return History(merged)
