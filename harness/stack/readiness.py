"""Waiting until a started service serves: one loop for a first start and for a kill fault's restart.

A service is started when it answers, not when its process exists: the app
imports its modules and runs its start-up for seconds (12 s was measured for
two uvicorn workers on a loaded 2-core machine). The stack waits for that
before the load starts, and :class:`RestartsReady` makes a kill fault's
restart wait for it too, as the container launcher's restart does
(``containers.py``), so the fault's recorded end is when the service serves
again and the schedule's next fault lands on a service that is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .errors import ServiceStartError
from .ports import wait_until
from .process import ManagedProcess

__all__ = ["RestartsReady", "http_ok", "log_says", "start_and_wait", "start_and_wait_http"]

#: A factory of readiness predicates: called just before each start, so a log-based check reads only new lines.
ReadyCheck = Callable[[], Callable[[], bool]]


def http_ok(url: str) -> ReadyCheck:
    """Ready once GET ``url`` answers 200."""

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return lambda: ready


def log_says(path: Path, marker: bytes) -> ReadyCheck:
    """Ready once ``marker`` appears in the lines ``path`` gains after the start (a restart appends)."""

    def check() -> Callable[[], bool]:
        offset = path.stat().st_size if path.exists() else 0

        def ready() -> bool:
            try:
                with path.open("rb") as fh:
                    fh.seek(offset)
                    return marker in fh.read()
            except OSError:
                return False

        return ready

    return check


def start_and_wait(process: ManagedProcess, check: ReadyCheck, *, service: str, what: str, timeout: float,
                   started: bool = False) -> None:
    """Start ``process`` and wait until ``check`` says it serves; kill it and explain (``what`` was awaited) otherwise.

    ``started``: the process was already spawned (launched early); only wait.
    """
    ready = check()
    began = time.monotonic()
    if not started:
        process.start()
    if not wait_until(ready, timeout=timeout, interval=0.05, alive=process.running):
        tail = process.log_tail(40)
        process.kill()
        raise ServiceStartError(service, f"{what} not ready after {time.monotonic() - began:.1f}s", tail)


def start_and_wait_http(process: ManagedProcess, url: str, *, service: str, timeout: float) -> None:
    """Start ``process`` and wait until GET ``url`` answers 200; kill it and explain otherwise."""
    start_and_wait(process, http_ok(url), service=service, what=url, timeout=timeout)


class RestartsReady:
    """A service's process as a process-fault target whose start (a kill's restart) waits until it serves.

    Everything else (``pid``, ``stop``, ``kill``, ``pause``, ``resume``) is the process's own.
    A restart that does not become ready within ``timeout`` kills the process and raises
    :class:`ServiceStartError` with its log, which fails the run naming the service:
    a service that cannot come back is a finding, not something to load blindly.
    """

    def __init__(self, process: ManagedProcess, check: ReadyCheck, *, service: str, what: str,
                 timeout: float) -> None:
        self.process = process
        self.name = process.name
        self._check = check
        self._service = service
        self._what = what
        self._timeout = timeout

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def running(self) -> bool:
        return self.process.running()

    def start(self) -> None:
        start_and_wait(self.process, self._check, service=self._service, what=self._what, timeout=self._timeout)

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def pause(self) -> None:
        self.process.pause()

    def resume(self) -> None:
        self.process.resume()
