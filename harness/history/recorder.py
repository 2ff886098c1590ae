"""Recording a history while the load runs, without slowing the load down.

Callers (Locust users, the nemesis) only take a short lock to get the next
index and a timestamp and to append the op to an in-memory batch; a
background thread turns batches into JSON lines and writes them. Index and
timestamp are taken under the same lock, so index order is time order and
the file is written in index order. If the writer falls far behind, the
caller that notices drains the batch itself, which bounds memory. A write
error is not swallowed: it surfaces on the next call and on ``close()``,
because a run with a silently incomplete history would check as valid.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from stormproof.harness.history.classify import classify
from stormproof.harness.history.op import EMPTY, Op, OpType, freeze_mapping, op_to_json
from stormproof.harness.history.vocabulary import FAULT, NEMESIS

__all__ = ["HistoryRecorder", "HistoryWriteError"]


class HistoryWriteError(RuntimeError):
    """The history file could not be written; the recorder is unusable."""


def _error_text(error: object | None) -> str | None:
    if error is None or isinstance(error, str):
        return error
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


class HistoryRecorder:
    """Thread-safe recorder of invoke/completion pairs into a JSON-lines file.

    ``origin_ns`` is the ``time.monotonic_ns()`` value that ``time_ns`` counts
    from; every recorder of one run on one machine must share it so their
    files merge in real-time order (it defaults to this recorder's creation).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        origin_ns: int | None = None,
        batch_size: int = 8192,
        flush_interval: float = 0.2,
        max_buffered: int = 262_144,
        clock: Callable[[], int] = time.monotonic_ns,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if batch_size < 1 or max_buffered < batch_size:
            raise ValueError("need 1 <= batch_size <= max_buffered")
        self.path = os.fspath(path)
        self._clock = clock
        self._wall = wall_clock
        self._origin = clock() if origin_ns is None else origin_ns
        self._batch_size = batch_size
        self._max_buffered = max_buffered
        self._flush_interval = flush_interval
        self._file = open(self.path, "w", encoding="utf-8", buffering=1 << 20)
        self._lock = threading.Lock()  # index, time and buffer
        self._write_lock = threading.Lock()  # one writer at a time, in order
        self._buffer: list[Op] = []
        self._next = 0
        self._closed = False
        self._error: BaseException | None = None
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    # -- recording ------------------------------------------------------------
    def invoke(
        self, process: str, f: str, *, tenant: str | None = None, args: Mapping[str, Any] | None = None
    ) -> Op:
        """Record the start of an operation; complete it with ``complete``."""
        frozen = freeze_mapping(args)
        with self._lock:
            if self._closed or self._error is not None:
                self._raise_unusable()
            index = self._next
            self._next = index + 1
            op = Op(index, "invoke", process, f, tenant, frozen, None, EMPTY, None,
                    self._clock() - self._origin, self._wall(), None)
            buffer = self._buffer
            buffer.append(op)
            size = len(buffer)
        self._after_append(size)
        return op

    def complete(
        self,
        invoke: Op,
        *,
        status: int | None = None,
        result: Mapping[str, Any] | None = None,
        error: object | None = None,
        type: OpType | None = None,
    ) -> Op:
        """Record the completion of ``invoke``.

        ``type`` defaults to ``classify(status, error)``; ``error`` may be an
        exception (recorded as ``"Name: message"``). Complete each invoke once.
        """
        if invoke.type != "invoke":
            raise ValueError(f"op {invoke.index} is a completion, not an invoke")
        op_type = classify(status, error) if type is None else type
        if op_type == "invoke":
            raise ValueError("a completion cannot have type 'invoke'")
        frozen = freeze_mapping(result)
        error_text = _error_text(error)
        with self._lock:
            if self._closed or self._error is not None:
                self._raise_unusable()
            index = self._next
            self._next = index + 1
            op = Op(index, op_type, invoke.process, invoke.f, invoke.tenant, invoke.args, status, frozen,
                    error_text, self._clock() - self._origin, self._wall(), invoke.index)
            buffer = self._buffer
            buffer.append(op)
            size = len(buffer)
        self._after_append(size)
        return op

    def fault(
        self,
        fault: str,
        phase: str,
        target: str,
        params: Mapping[str, Any] | None = None,
        *,
        error: object | None = None,
    ) -> Op:
        """Record a fault injection or heal by the nemesis as an invoke/completion pair.

        Call it once the fault took effect (``ok``) or failed (``info``: it may
        have partly applied). Returns the completion.
        """
        args = {"fault": fault, "phase": phase, "target": target, "params": dict(params or {})}
        invoke = self.invoke(NEMESIS, FAULT, args=args)
        return self.complete(invoke, error=error, type="ok" if error is None else "info")

    @property
    def count(self) -> int:
        """Ops recorded so far."""
        return self._next

    # -- writing --------------------------------------------------------------
    def _after_append(self, size: int) -> None:
        if size >= self._max_buffered:
            self._drain()  # the writer fell behind: pay for it here, bounded memory
        elif size >= self._batch_size:
            self._wake.set()

    def _raise_unusable(self) -> None:
        if self._error is not None:
            raise HistoryWriteError(f"writing {self.path} failed: {self._error}") from self._error
        raise HistoryWriteError(f"recorder for {self.path} is closed")

    def _drain(self) -> None:
        with self._write_lock:
            with self._lock:
                batch = self._buffer
                self._buffer = []
            if not batch or self._error is not None:
                return
            try:
                self._file.write("\n".join([op_to_json(op) for op in batch]) + "\n")
                self._file.flush()
            except BaseException as exc:  # noqa: BLE001 - reported on the next call and on close
                self._error = exc

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._drain()

    def flush(self) -> None:
        """Write everything recorded so far to the file (to the OS, not fsync)."""
        self._drain()
        if self._error is not None:
            self._raise_unusable()

    def close(self) -> None:
        """Stop the writer, write what is left and close the file (idempotent)."""
        with self._lock:
            if self._closed:
                already = True
            else:
                already = False
                self._closed = True
        if already:
            return
        self._wake.set()
        self._thread.join()
        self._drain()
        self._file.close()
        if self._error is not None:
            raise HistoryWriteError(f"writing {self.path} failed: {self._error}") from self._error

    def __enter__(self) -> HistoryRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
