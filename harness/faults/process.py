"""Process faults on processes the harness itself started.

Faults act through the ``ManagedProcess`` protocol (implemented by the stack
module) and signal only that process's PID, never a name: a chaos tool must
not be able to hit a process it does not own. A target that is not a local
process (a container) also implements :class:`Pausable`: it pauses and
resumes itself (Docker's pause freezes every process of the container),
and ``kill``/``start`` go through its own API rather than a PID.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ManagedProcess",
    "Pausable",
    "ProcessFaultError",
    "kill_and_restart",
    "pause",
    "resume",
    "signal_tree",
    "KillFault",
    "PauseFault",
]


@runtime_checkable
class ManagedProcess(Protocol):
    """A process the harness started and can start again.

    ``pid`` is None while the process is not running.  ``kill`` must send
    SIGKILL and wait for the process to be reaped (so ``pid`` becomes None).
    """

    name: str

    @property
    def pid(self) -> int | None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def kill(self) -> None: ...


@runtime_checkable
class Pausable(Protocol):
    """A target that pauses itself (e.g. a container, frozen by Docker): no PID is signalled here."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class ProcessFaultError(RuntimeError):
    """A process fault could not be applied (not running, unsafe PID...)."""


def _checked_pid(proc: ManagedProcess) -> int:
    pid = proc.pid
    if pid is None:
        raise ProcessFaultError(f"process {proc.name!r} is not running")
    if pid <= 1 or pid == os.getpid():
        raise ProcessFaultError(f"refusing to signal pid {pid} for {proc.name!r}")
    return pid


def kill_and_restart(
    proc: ManagedProcess, downtime: float = 0.0, *, sleep: Callable[[float], None] = time.sleep
) -> tuple[int, int]:
    """kill -9 ``proc``, stay down ``downtime`` seconds, start it; (old, new) PIDs."""
    old = _checked_pid(proc)
    proc.kill()
    if downtime > 0:
        sleep(downtime)
    proc.start()
    return old, _checked_pid(proc)


def signal_tree(pid: int, signum: int) -> None:
    """Signal the group ``pid`` leads (the stack starts each service in its own session), else ``pid``.

    A pause must freeze a service's children too (uvicorn workers, a task pool), as
    Docker's pause freezes a whole container.
    """
    try:
        if os.getpgid(pid) == pid and pid != os.getpgid(0):
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def pause(proc: ManagedProcess) -> int:
    """SIGSTOP the process and its group; returns the PID to hand to ``resume``."""
    pid = _checked_pid(proc)
    signal_tree(pid, signal.SIGSTOP)
    return pid


def resume(pid: int) -> None:
    """SIGCONT a PID (and its group) we paused; a PID that has exited since is fine."""
    if pid <= 1 or pid == os.getpid():
        raise ProcessFaultError(f"refusing to signal pid {pid}")
    signal_tree(pid, signal.SIGCONT)


class KillFault:
    """Fault package "kill": SIGKILL at start, restart at stop, heal = all running."""

    name = "kill"

    def __init__(self, processes: Mapping[str, ManagedProcess]) -> None:
        self._processes = processes

    def start(self, target: str, params: Mapping[str, Any]) -> str:
        proc = self._processes[target]
        _checked_pid(proc)
        proc.kill()
        return target

    def stop(self, handle: object) -> None:
        proc = self._processes[str(handle)]
        if proc.pid is None:
            proc.start()

    def heal(self) -> None:
        for proc in self._processes.values():
            if proc.pid is None:
                proc.start()


class PauseFault:
    """Fault package "pause": SIGSTOP at start, SIGCONT at stop, heal = resume all.

    A :class:`Pausable` target (a container) is paused and resumed through its own methods.
    The handle is ``(target, pid)``; ``pid`` is None for a self-pausing target.
    """

    name = "pause"

    def __init__(self, processes: Mapping[str, ManagedProcess]) -> None:
        self._processes = processes
        self._paused: set[tuple[str, int | None]] = set()

    def start(self, target: str, params: Mapping[str, Any]) -> tuple[str, int | None]:
        proc = self._processes[target]
        if isinstance(proc, Pausable):
            _checked_pid(proc)
            proc.pause()
            handle: tuple[str, int | None] = (target, None)
        else:
            handle = (target, pause(proc))
        self._paused.add(handle)
        return handle

    def stop(self, handle: object) -> None:
        target, pid = handle  # type: ignore[misc]
        if pid is None:
            proc = self._processes[target]
            assert isinstance(proc, Pausable)
            proc.resume()
        else:
            resume(int(pid))
        self._paused.discard((target, pid))

    def heal(self) -> None:
        for handle in sorted(self._paused, key=lambda h: (h[0], h[1] or 0)):
            self.stop(handle)
        self._paused.clear()
