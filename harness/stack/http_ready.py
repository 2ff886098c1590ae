"""Waiting for an HTTP service to say it is ready: the one place for that loop."""

from __future__ import annotations

import time

import httpx

from .errors import ServiceStartError
from .ports import wait_until
from .process import ManagedProcess

__all__ = ["start_and_wait_http"]


def start_and_wait_http(process: ManagedProcess, url: str, *, service: str, timeout: float) -> None:
    """Start ``process`` and wait until GET ``url`` answers 200; kill it and explain otherwise."""

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    started = time.monotonic()
    process.start()
    if not wait_until(ready, timeout=timeout, interval=0.05, alive=process.running):
        tail = process.log_tail(40)
        process.kill()
        raise ServiceStartError(service, f"{url} not ready after {time.monotonic() - started:.1f}s", tail)
