"""The history file: JSON lines, one op per line, in index order.

A run that crashes mid-write leaves a partial last line; reading tolerates
exactly that (the partial line is dropped) and nothing else: a malformed line
anywhere before the end means the file is corrupt, and we say where.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

from stormproof.harness.history.gcpause import paused_gc
from stormproof.harness.history.history import History
from stormproof.harness.history.op import Op, op_from_dict, op_to_json

__all__ = ["HistoryFileError", "load_history", "read_ops", "write_history"]

_CHUNK = 8192


class HistoryFileError(ValueError):
    """A history file line that is not an op, before the last line."""


def read_ops(path: str | os.PathLike[str]) -> list[Op]:
    """The ops of a history file, dropping a partial last line left by a crash."""
    with paused_gc():
        return _read_ops(path)


def _read_ops(path: str | os.PathLike[str]) -> list[Op]:
    with open(path, "rb") as handle:
        data = handle.read()
    if not data:
        return []
    lines = data.split(b"\n")
    # A file written to the end finishes with "\n", so the last piece is empty;
    # otherwise the last piece is a line cut short by a crash.
    tail = lines.pop()
    ops: list[Op] = []
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    for start in range(0, len(numbered), _CHUNK):
        chunk = numbered[start : start + _CHUNK]
        try:  # one parse per chunk: much cheaper than one per line
            decoded = json.loads(b"[" + b",".join(line for _, line in chunk) + b"]")
            if len(decoded) == len(chunk):
                ops.extend([op_from_dict(item) for item in decoded])
                continue
        except (ValueError, KeyError, TypeError):
            pass
        for number, line in chunk:  # find the culprit
            try:
                ops.append(op_from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise HistoryFileError(f"{os.fspath(path)}:{number}: not a history op: {exc}") from exc
    if tail.strip():
        try:
            ops.append(op_from_dict(json.loads(tail)))
        except (ValueError, KeyError, TypeError):
            pass  # truncated by a crash mid-write: that op was never fully recorded
    return ops


def load_history(path: str | os.PathLike[str]) -> History:
    """Read a history file written by ``HistoryRecorder`` (or ``write_history``)."""
    return History(read_ops(path))


def write_history(ops: Iterable[Op], path: str | os.PathLike[str]) -> None:
    """Write ops as a history file (for merged or generated histories)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(op_to_json(op) + "\n" for op in ops)
