"""Recording requests in the load process at the cost of two appends, and deriving the history after.

The load process exists to send requests; every microsecond it spends on the
history is a microsecond not spent on load, and under gevent a "background"
writer thread is a greenlet on the same core, so moving work there saves
nothing. ``SpooledRecorder`` therefore does only what must happen while the
request is in flight: take the timestamps and keep what came back as it came
(status, the raw body bytes, the replay header, the error text). Records go
to a list, and every ``batch`` records to a ``marshal`` spool file beside the
history, which bounds memory. Everything the checkers read that can be
computed from those bytes (body digest, company ids seen, ids of the answer,
the payload fingerprint, the masked digest of a probe) is computed by
``derive`` once the load is over: ``close()`` (or ``flush()``, which the
distributed worker calls before it ships its history) writes the same
JSON-lines history ``HistoryRecorder`` writes, op for op.

Indices are positions in append order, so every completion follows its
invoke; ``merge_histories`` orders several files by time. A load process
killed before ``close()`` leaves ``<path>.spool``: ``finish_spool`` turns it
into the history later (the runner does so for a part it finds unfinished);
the batch not yet spooled is lost, as the unflushed buffer of a crashed
``HistoryRecorder`` is.
"""

from __future__ import annotations

import itertools
import marshal
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from stormproof.harness.history.classify import classify
from stormproof.harness.history.op import dict_to_json
from stormproof.harness.history.recorder import _error_text

__all__ = ["Derive", "SPOOL_SUFFIX", "SpooledRecorder", "finish_spool"]

#: The spool of history ``X`` is ``X`` + this suffix.
SPOOL_SUFFIX = ".spool"



class Derive(Protocol):
    """What the checkers read, computed from what was sent and what came back; runs after the load."""

    def args(self, args: Mapping[str, Any], payload: bytes) -> Mapping[str, Any]:
        """An invoke's args once the fingerprint of ``payload`` (the bytes sent) is added."""

    def result(self, status: int | None, body: bytes | None, replayed: bool, extra: Any) -> Mapping[str, Any]:
        """A completion's result from the raw answer (``body`` None: no answer came)."""

_INVOKE = 0
_COMPLETE = 1


class SpooledRecorder:
    """The load process's recorder: raw records now, history ops at ``flush()``/``close()``.

    ``invoke`` returns a handle (an int) for ``complete``. ``args`` are kept
    as given (a plain dict the caller no longer changes) and must be values
    ``marshal`` stores: JSON-like builtins. Safe for gevent greenlets and for
    threads (the handle comes from an atomic counter; ``list.append`` is
    atomic).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        derive: Derive,
        *,
        origin_ns: int | None = None,
        batch: int = 4096,
        clock: Callable[[], int] = time.monotonic_ns,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.path = os.fspath(path)
        self.spool_path = self.path + SPOOL_SUFFIX
        self._derive = derive
        self._clock = clock
        self._wall = wall_clock
        self._origin = clock() if origin_ns is None else origin_ns
        self._batch = batch
        self._ids = itertools.count()
        self._records: list[tuple[Any, ...]] = []
        self._spool = open(self.spool_path, "wb")  # noqa: SIM115 - closed by close()
        self._spilled = 0
        self._closed = False

    # -- the hot path ---------------------------------------------------------
    def invoke(self, process: str, f: str, tenant: str | None, args: Mapping[str, Any],
               payload: bytes | None = None) -> int:
        """Record the start of a request; ``payload``: sent bytes whose fingerprint ``derive`` adds to args."""
        handle = next(self._ids)
        records = self._records
        records.append((_INVOKE, handle, process, f, tenant, args, payload, self._clock() - self._origin,
                        self._wall()))
        if len(records) >= self._batch:
            self._spill()
        return handle

    def complete(self, handle: int, status: int | None, body: bytes | None = None, replayed: bool = False,
                 extra: Any = None, error: object | None = None) -> None:
        """Record what came back: ``status`` None (and ``error``) when no answer came."""
        records = self._records
        records.append((_COMPLETE, handle, status, body, replayed, extra,
                        None if error is None else _error_text(error), self._clock() - self._origin, self._wall()))
        if len(records) >= self._batch:
            self._spill()

    @property
    def count(self) -> int:
        """Records so far (invokes and completions)."""
        return self._spilled + len(self._records)

    def _spill(self) -> None:
        records, self._records = self._records, []
        if self._closed:
            return
        self._spilled += len(records)
        marshal.dump(records, self._spool)

    # -- after the load -------------------------------------------------------
    def flush(self) -> None:
        """Write the history of everything recorded so far to ``path`` (the spool stays for more)."""
        if self._closed:
            return
        self._spill()
        self._spool.flush()
        finish_spool(self.spool_path, self._derive, self.path, keep_spool=True)

    def close(self) -> None:
        """Write the history to ``path`` and remove the spool (idempotent)."""
        if self._closed:
            return
        self._spill()
        self._closed = True
        self._spool.close()
        finish_spool(self.spool_path, self._derive, self.path)

    def __enter__(self) -> SpooledRecorder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _records(spool_path: str) -> Iterator[tuple[Any, ...]]:
    with open(spool_path, "rb") as handle:
        while True:
            try:
                batch = marshal.load(handle)
            except (EOFError, ValueError, TypeError):
                return  # the end, or a batch cut short by a crash: never fully recorded
            yield from batch


def _plain(result: Mapping[str, Any]) -> Mapping[str, Any]:
    """Sets of strings in their JSON form already (``{"$set": sorted}``), as ``op_to_json`` writes them."""
    for key, value in result.items():
        if type(value) is frozenset and all(type(item) is str for item in value):
            result = {**result, key: {"$set": sorted(value)}}
    return result


def finish_spool(spool_path: str | os.PathLike[str], derive: Derive, path: str | os.PathLike[str] | None = None,
                 *, keep_spool: bool = False) -> str:
    """Turn a spool into its JSON-lines history (``path``: the spool's name less ``.spool``); returns the path.

    Written to a temporary name and renamed, so a reader sees the old history or the new one, never half.
    """
    spool_path = os.fspath(spool_path)
    if path is None:
        if not spool_path.endswith(SPOOL_SUFFIX):
            raise ValueError(f"{spool_path}: a spool's name ends in {SPOOL_SUFFIX}; pass the history's path")
        path = spool_path[: -len(SPOOL_SUFFIX)]
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    pending: dict[int, tuple[int, str, str, str | None, Mapping[str, Any]]] = {}
    empty: dict[str, Any] = {}
    with open(tmp, "w", encoding="utf-8", buffering=1 << 20) as out:
        position = 0
        lines: list[str] = []
        for record in _records(spool_path):
            if record[0] == _INVOKE:
                _, handle, process, f, tenant, args, payload, t, wall = record
                if payload is not None:
                    args = derive.args(args, payload)
                pending[handle] = (position, process, f, tenant, args)
                line = {"index": position, "type": "invoke", "process": process, "f": f, "tenant": tenant,
                        "args": args, "status": None, "result": empty, "error": None, "time_ns": t, "wall": wall,
                        "invoke_index": None}
            else:
                _, handle, status, body, replayed, extra, error, t, wall = record
                invoke = pending.pop(handle, None)
                if invoke is None:
                    continue  # its invoke was in a batch lost to a crash
                at, process, f, tenant, args = invoke
                result = empty if body is None else _plain(derive.result(status, body, replayed, extra))
                line = {"index": position, "type": classify(status, error), "process": process, "f": f,
                        "tenant": tenant, "args": args, "status": status, "result": result, "error": error,
                        "time_ns": t, "wall": wall, "invoke_index": at}
            lines.append(dict_to_json(line))  # the line op_to_json writes for the same op
            position += 1
            if len(lines) >= 8192:
                out.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    if not keep_spool:
        os.remove(spool_path)
    return path
