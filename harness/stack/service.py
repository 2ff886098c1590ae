"""What every service of a stack shares: one managed process, a run dir it may own, stop, context manager."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from .process import ManagedProcess
from .rundir import make_run_dir, remove_run_dir

__all__ = ["Service", "app_environment"]

S = TypeVar("S", bound="Service")


def app_environment(
    database_url: str, redis_url: str, weakenings: Iterable[str], extra: Mapping[str, str] | None
) -> dict[str, str]:
    """What the app's processes (API and workers) read: stores, weakenings, environment, then ``extra``."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STORMPROOF_WEAKEN": ",".join(sorted(set(weakenings))),
        "STORMPROOF_ENV": os.environ.get("STORMPROOF_ENV", "test"),
        **(extra or {}),
    }


class Service(ABC):
    """A service run as one :class:`ManagedProcess`.

    Given no ``base_dir``, the service makes its own run directory and removes
    it on :meth:`stop`; given one (a stack's), it leaves it to its owner.
    """

    #: The run directory's name prefix when the service owns it.
    kind = "service"

    def __init__(self, *, base_dir: Path | None) -> None:
        self._own_dir = base_dir is None
        self.base_dir = base_dir
        self.process: ManagedProcess | None = None

    def _run_dir(self) -> Path:
        if self.base_dir is None:
            self.base_dir = make_run_dir(self.kind)
        return self.base_dir

    @abstractmethod
    def start(self: S) -> S:
        """Start the process and return once the service answers."""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self._own_dir and self.base_dir is not None:
            remove_run_dir(self.base_dir)
            self.base_dir = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
