"""Free loopback ports and waiting for a port to accept connections: the one place for both."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable

__all__ = ["free_port", "free_ports", "wait_for_port", "wait_until"]


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free TCP port on ``host``.

    The port is released before the caller binds it, so a race with another
    process is possible but rare on loopback; services that lose it fail to
    start with a clear message and the caller may retry.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports, all held until every one is chosen (see :func:`free_port`)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.02,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``predicate`` until true or ``timeout``; stop early if ``alive()`` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if alive is not None and not alive():
            return False
        time.sleep(interval)
    return predicate()


def wait_for_port(
    host: str, port: int, *, timeout: float = 10.0, alive: Callable[[], bool] | None = None
) -> bool:
    """True once ``host:port`` accepts a TCP connection."""

    def accepts() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return wait_until(accepts, timeout=timeout, alive=alive)
