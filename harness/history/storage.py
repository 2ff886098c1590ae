"""The history file: JSON lines, one op per line, in index order.

A run that crashes mid-write leaves a partial last line; reading tolerates
exactly that (the partial line is dropped) and nothing else: a malformed line
anywhere before the end means the file is corrupt, and we say where.

A loaded history is what a run's memory is made of (millions of ops), so
reading keeps it compact: ``orjson`` parses (several times faster than
``json``; ``json`` takes over for a chunk orjson refuses, e.g. an integer
beyond 64 bits), the strings that repeat across ops (process, operation,
tenant, type, error, argument values) are one object each, as are the
``company_ids_seen`` sets and the small statuses, and a completion whose
args equal its invoke's shares the invoke's mapping. The ops are equal to
those written, field for field (bench/bench_history.py measures bytes/op).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stormproof.harness.history.gcpause import paused_gc
from stormproof.harness.history.history import History
from stormproof.harness.history.op import EMPTY, OP_TYPES, FrozenMap, Op, freeze, op_from_dict, op_to_json

try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency; json still reads every history
    _fast_loads = json.loads

__all__ = ["HistoryFileError", "load_history", "read_ops", "write_history"]

_CHUNK = 8192


class HistoryFileError(ValueError):
    """A history file line that is not an op, before the last line."""


def read_ops(path: str | os.PathLike[str]) -> list[Op]:
    """The ops of a history file, dropping a partial last line left by a crash."""
    with paused_gc():
        return _read_ops(path)


def _read_ops(path: str | os.PathLike[str]) -> list[Op]:
    # Streamed, a chunk of lines at a time: reading the whole file and splitting it held the file twice
    # (the bytes and its lines) and then its lines beside the ops being built, the peak memory of a loaded
    # run (about 300 bytes a line on a 1M-op history). Now at most one chunk of lines is alive beside the ops.
    ops: list[Op] = []
    add = _Compact(ops).add
    chunk: list[tuple[int, bytes]] = []
    tail = b""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                tail = line  # the last piece, with no newline: a line cut short by a crash
                break
            if line.strip():
                chunk.append((number, line))
                if len(chunk) == _CHUNK:
                    _add_chunk(path, chunk, ops, add)
                    chunk = []
    if chunk:
        _add_chunk(path, chunk, ops, add)
    if tail.strip():
        try:
            add(json.loads(tail))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # truncated by a crash mid-write: that op was never fully recorded
    return ops


def _add_chunk(path: str | os.PathLike[str], chunk: list[tuple[int, bytes]], ops: list[Op],
               add: Callable[[Mapping[str, Any]], None]) -> None:
    """The ops of one chunk of (line number, line): one parse for all of it, line by line to name a bad one."""
    decoded = _parse_chunk(b"[" + b",".join(line for _, line in chunk) + b"]", len(chunk))
    if decoded is not None:
        base = len(ops)
        try:
            for item in decoded:
                add(item)
            return
        except (ValueError, KeyError, TypeError, AttributeError):
            del ops[base:]
    for number, line in chunk:  # find the culprit
        try:
            add(json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HistoryFileError(f"{os.fspath(path)}:{number}: not a history op: {exc}") from exc


def _parse_chunk(joined: bytes, expected: int) -> list[Any] | None:
    """One parse per chunk of lines (much cheaper than one per line); None when a line is not JSON."""
    for loads in (_fast_loads, json.loads):
        try:
            decoded = loads(joined)
        except (ValueError, TypeError):
            continue
        return decoded if type(decoded) is list and len(decoded) == expected else None
    return None


#: Strings longer than this are not interned (digests and bodies: unique per op, a table entry would cost more).
_INTERN_MAX = 40
_SCALARS = (int, float, bool, type(None))
_SET_TAG = "$set"


class _Compact:
    """Builds ops from parsed JSON with one object per repeated value (see the module docstring)."""

    def __init__(self, ops: list[Op]) -> None:
        self.ops = ops
        self.values: dict[Any, Any] = {}

    def add(self, data: Mapping[str, Any]) -> None:
        op_type = data["type"]
        if op_type not in OP_TYPES:
            raise ValueError(f"unknown op type {op_type!r}")
        values = self.values
        ops = self.ops
        invoke_index = data.get("invoke_index")
        raw_args = data.get("args")
        args = None
        if type(invoke_index) is int and 0 <= invoke_index < len(ops):
            invoke = ops[invoke_index]
            if invoke.index == invoke_index:
                invoke_index = invoke.index  # one int object for both
                if invoke.args == (raw_args or EMPTY):
                    args = invoke.args  # a completion repeats its invoke's args: share them
        if args is None:
            args = self.mapping(raw_args) if raw_args else EMPTY
        status = data.get("status")
        if type(status) is int:
            status = values.setdefault(status, status)
        tenant = data.get("tenant")
        if type(tenant) is str:
            tenant = values.setdefault(tenant, tenant)
        error = data.get("error")
        if type(error) is str and len(error) <= _INTERN_MAX:
            error = values.setdefault(error, error)
        result = data.get("result")
        process = data["process"]
        f = data["f"]
        ops.append(Op(data["index"], values.setdefault(op_type, op_type), values.setdefault(process, process),
                      values.setdefault(f, f), tenant, args, status, self.mapping(result) if result else EMPTY,
                      error, data.get("time_ns", 0), data.get("wall", 0.0), invoke_index))

    def mapping(self, value: Mapping[str, Any] | None) -> Mapping[str, Any]:
        """``freeze_mapping``, with repeated short strings and sets shared."""
        if not value:
            return EMPTY
        if type(value) is not dict:
            raise TypeError(f"history args and results are objects, got {type(value).__name__}")
        values = self.values
        out: dict[str, Any] = {}
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                if len(item) <= _INTERN_MAX:
                    item = values.setdefault(item, item)
            elif kind is dict and len(item) == 1 and _SET_TAG in item:
                members = item[_SET_TAG]
                key_of = (_SET_TAG, *members) if type(members) is list else None
                shared = values.get(key_of) if key_of is not None else None
                if shared is None:
                    shared = freeze(item)
                    if key_of is not None and type(shared) is frozenset:
                        try:
                            values[key_of] = shared
                        except TypeError:  # unhashable members: nothing to share
                            pass
                item = shared
            elif kind not in _SCALARS:
                item = freeze(item)
            out[key] = item
        return FrozenMap(out)


def load_history(path: str | os.PathLike[str]) -> History:
    """Read a history file written by ``HistoryRecorder`` (or ``write_history``)."""
    return History(read_ops(path))


def write_history(ops: Iterable[Op], path: str | os.PathLike[str]) -> None:
    """Write ops as a history file (for merged or generated histories)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(op_to_json(op) + "\n" for op in ops)
