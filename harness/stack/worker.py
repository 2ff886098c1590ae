"""Celery worker processes of the reference app, ready when the worker says so."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from .process import ManagedProcess
from .readiness import RestartsReady, log_says
from .recipe import worker_args
from .service import Service, app_environment

__all__ = ["CeleryWorkerProcess", "PoolProcess"]

#: What Celery logs once the worker consumes (``celery@worker1 ready.``).
READY = b" ready."


class CeleryWorkerProcess(Service):
    """``celery -A stormproof.reference_app.worker.main worker`` (prefork) with the app's settings.

    ``concurrency`` child processes execute tasks; :attr:`child_pids` lists them,
    so a fault can kill one mid-task (acks-late redelivery) rather than the whole worker.
    """

    kind = "worker"

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        weakenings: Iterable[str] = (),
        concurrency: int = 2,
        name: str = "worker1",
        env: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
        start_timeout: float = 30.0,
        beat_schedule: str | None = None,
    ) -> None:
        super().__init__(base_dir=base_dir)
        self.name = name
        self.beat_schedule = beat_schedule
        self.concurrency = concurrency
        self.start_timeout = start_timeout
        self.environment = app_environment(
            database_url, redis_url, weakenings, {"STORMPROOF_LOG_LEVEL": "INFO", **(env or {})}
        )

    def start(self) -> "CeleryWorkerProcess":
        self._run_dir()
        argv = [
            sys.executable, "-m", "celery", "-A", "stormproof.reference_app.worker.main", "worker",
            "-Q", "shunya", *worker_args(self.name, self.concurrency, self.beat_schedule),
        ]
        self.process = ManagedProcess(self.name, argv, log_path=self._log_path, env=self.environment, stop_timeout=15)
        self.fault_target().start()
        return self

    @property
    def _log_path(self) -> Path:
        return self.base_dir / f"{self.name}.log"

    def fault_target(self) -> RestartsReady:
        """The worker's process as a fault target; its first start and a kill's restart end once Celery says ready."""
        assert self.process is not None, f"worker {self.name} is not started"
        return RestartsReady(self.process, log_says(self._log_path, READY), service=f"Celery worker {self.name}",
                             what="the worker", timeout=self.start_timeout)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def child_pids(self) -> list[int]:
        """The prefork pool's processes (children of the worker's main process)."""
        if self.pid is None:
            return []
        pids: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):  # children belong to the forking thread
            try:
                pids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
        return pids


class PoolProcess:
    """A Celery worker's first pool process as a fault target; the worker restarts it when it dies."""

    def __init__(self, worker: CeleryWorkerProcess) -> None:
        self.worker = worker
        self.name = f"{worker.name}-pool"

    @property
    def pid(self) -> int | None:
        children = self.worker.child_pids()
        return min(children) if children else None

    def start(self) -> None:
        """Nothing to do: the worker's main process replaces a dead pool process itself."""

    def stop(self) -> None:
        self.kill()

    def kill(self) -> None:
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
