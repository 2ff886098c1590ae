"""One event loop and one :class:`AppContext` per worker process, built after the fork.

Celery's prefork children are plain synchronous processes; the app's services
are asyncio. Each child keeps a private loop for its whole life and runs each
task's coroutine on it, so connections and pools are reused across tasks
instead of being rebuilt per task.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..context import AppContext, build_context
from ..settings import Settings

__all__ = ["WorkerRuntime", "runtime"]

T = TypeVar("T")


class WorkerRuntime:
    def __init__(self, settings: Settings) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.ctx: AppContext = build_context(settings, pool_size=5)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)


_runtime: WorkerRuntime | None = None


def runtime() -> WorkerRuntime:
    global _runtime
    if _runtime is None or _runtime.pid != os.getpid():
        _runtime = WorkerRuntime(Settings.from_env())
    return _runtime
