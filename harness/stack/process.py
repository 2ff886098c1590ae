"""The one place that starts, signals and stops a child process.

Every service of a stack (PostgreSQL, Redis, proxies, the app, workers) is a
:class:`ManagedProcess`. Three promises hold for all of them:

* the child never outlives the harness: it gets ``PR_SET_PDEATHSIG`` = SIGKILL,
  set *after* any change of user (the kernel clears it on a credential change);
* children are forked from one long-lived spawner thread, because the kernel
  fires the parent-death signal when the *thread* that forked exits, and faults
  restart processes from short-lived threads;
* each child runs in its own session, so a Ctrl-C at the terminal reaches only
  the harness, which then stops services in order;
* grandchildren die too: a service's own workers (uvicorn's, Celery's pool,
  PostgreSQL's backends) share its process group, and a small watchdog
  process, which outlives the harness, SIGKILLs every group still registered
  when the harness's end of a pipe closes, however the harness ended.

Only processes we started are ever signalled: by PID, or by the process group
whose leader we started (a group id cannot be reused while any member lives).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pwd
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path

from ..faults.process import signal_tree

__all__ = ["ManagedProcess", "unprivileged_user", "stop_all"]

_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not Linux: no parent-death signal, cleanup relies on atexit
    _libc = None


def unprivileged_user() -> pwd.struct_passwd | None:
    """The user that servers refusing root (PostgreSQL) run as, or None when not root.

    ``STORMPROOF_RUN_AS`` overrides; otherwise Debian's ``postgres`` user, then ``nobody``.
    """
    if os.geteuid() != 0:
        return None
    names = [os.environ.get("STORMPROOF_RUN_AS") or "", "postgres", "nobody"]
    for name in names:
        if not name:
            continue
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(
        "running as root and no unprivileged user (postgres, nobody) exists; "
        "create one (useradd -r stormproof) and set STORMPROOF_RUN_AS=stormproof"
    )


def _child_setup(user: pwd.struct_passwd | None) -> Callable[[], None]:
    def setup() -> None:
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            # The parent may have died between fork and prctl.
            if os.getppid() == 1:
                os._exit(1)

    return setup


class _Spawner:
    """A daemon thread that lives as long as the interpreter and forks every child."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def spawn(self, make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="stormproof-spawner", daemon=True)
                self._thread.start()
        done: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((make, done))
        return done.result()

    def _run(self) -> None:
        while True:
            make, done = self._requests.get()
            try:
                done.set_result(make())
            except BaseException as exc:  # handed back to the caller
                done.set_exception(exc)


_spawner = _Spawner()

_WATCHDOG = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    op, _, pgid = line.strip().partition(" ")
    if op == "add":
        groups.add(int(pgid))
    elif op == "del":
        groups.discard(int(pgid))
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class _Watchdog:
    """Kills registered process groups when the harness dies: the pipe's EOF is the signal."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-S", "-c", _WATCHDOG],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except OSError:
                self._proc = None

    def watch(self, pgid: int) -> None:
        self._send(f"add {pgid}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"del {pgid}\n")


_watchdog = _Watchdog()
_live: set["ManagedProcess"] = set()
_live_lock = threading.Lock()


class ManagedProcess:
    """A named child process with a log file, started and stopped by PID.

    ``stop_signal`` is what a clean stop sends first (PostgreSQL wants SIGINT
    for a fast shutdown); after ``stop_timeout`` seconds it gets SIGKILL.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: pwd.struct_passwd | None = None,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    # -- state ---------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The PID while the process runs; None before start and after it ended (never a stale PID)."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab", buffering=0)  # noqa: SIM115 - handed to the child
        if self.user is not None:
            os.chown(self.log_path, self.user.pw_uid, self.user.pw_gid)
        env = self.env if self.env is not None else dict(os.environ)
        argv, cwd, setup = self.argv, self.cwd, _child_setup(self.user)

        def make() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=setup,  # noqa: PLW1509 - needed for setuid + pdeathsig order
            )

        try:
            self._proc = _spawner.spawn(make)
        finally:
            log.close()
        _watchdog.watch(self._proc.pid)
        self._paused = False
        with _live_lock:
            _live.add(self)

    def stop(self) -> None:
        """Stop cleanly with ``stop_signal``, then SIGKILL after ``stop_timeout``."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(self.stop_signal)
            # Paused by us or by a fault acting on the PID: a stopped process acts on no signal.
            self._signal_group(signal.SIGCONT)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(timeout=10)
        self._forget()

    def kill(self) -> None:
        """SIGKILL and reap: the crash fault."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGKILL)
            proc.wait(timeout=10)
        self._forget()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP the process and its children: it keeps its sockets but makes no progress.

        The whole group, as Docker's pause freezes a whole container: an app of several
        uvicorn workers (or a prefork task worker) would otherwise go on serving from
        its children while only its supervisor sleeps.
        """
        if self.running():
            self._signal_group(signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        if self._paused and self.running():
            self._signal_group(signal.SIGCONT)
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def wait(self, timeout: float | None = None) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _signal(self, signum: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.kill(self._proc.pid, signum)
            except ProcessLookupError:
                pass

    def _signal_group(self, signum: int) -> None:
        """Signal the process group the child leads (its own session), else the child alone."""
        if self._proc is not None and self._proc.poll() is None:
            signal_tree(self._proc.pid, signum)

    def _forget(self) -> None:
        """After the leader is reaped: end stragglers of its group, stop watching it."""
        self._paused = False
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            _watchdog.forget(self._proc.pid)
        with _live_lock:
            _live.discard(self)

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid})"

    def __hash__(self) -> int:
        return id(self)


def stop_all(timeout: float = 5.0) -> None:
    """Stop every process still running: the last line of defence at interpreter exit."""
    with _live_lock:
        procs = list(_live)
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.stop_timeout = max(0.1, min(proc.stop_timeout, deadline - time.monotonic()))
        try:
            proc.stop()
        except Exception:  # noqa: BLE001 - keep stopping the others
            proc.kill()


atexit.register(stop_all)
