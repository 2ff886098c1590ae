"""Free loopback ports and waiting for a port to accept connections: the one place for both."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from functools import lru_cache

from .errors import ServiceStartError

__all__ = ["PORT_TRIES", "free_port", "free_ports", "port_was_taken", "start_on_a_free_port", "wait_for_port",
           "wait_until"]

#: Where service ports are drawn from when the ephemeral range leaves room below it.
_LOWEST_PORT = 10000
_random = random.SystemRandom()

#: How many ports a service we place ourselves tries before its start fails (see :func:`port_was_taken`).
PORT_TRIES = 4


def port_was_taken(log_tail: str) -> bool:
    """True when a server's log says its port was taken between our pick and its bind.

    :func:`free_port` releases the port before the server binds it, so another
    process (a parallel run, a test worker, a container publishing a port) can
    take it in that window. That is a race of ours, not a fault of the service:
    a service whose port we chose retries on a new one instead of ending the
    run with an ERROR (PostgreSQL says "could not bind ... Address already in
    use", Redis "bind: Address already in use").
    """
    return "address already in use" in log_tail.lower()


def start_on_a_free_port(launch: Callable[[], None], repick: Callable[[], None], *, port_is_ours: bool) -> None:
    """``launch()`` a server; when its port was taken before it bound it, ``repick()`` a port and launch again.

    Only a port the harness picked is replaced (``port_is_ours``): a port the user chose fails with the
    server's own message. At most :data:`PORT_TRIES` launches; any other failure is raised at once.
    """
    for tries_left in range(PORT_TRIES - 1, -1, -1):
        try:
            launch()
            return
        except ServiceStartError as err:
            if not (tries_left and port_is_ours and port_was_taken(err.log_tail)):
                raise
        repick()


@lru_cache(maxsize=1)
def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on ``host``, drawn below the kernel's ephemeral range.

    The port is released before the service binds it. A port the kernel hands
    out for ``bind(0)`` comes from the ephemeral range, the same range every
    outgoing connection takes its local port from: under load (Locust, the
    proxies, the pools) an outgoing connection can take the port in that
    window and the service fails with "address already in use", a false
    alarm on a busy machine. Ports below the range are never given to
    outgoing connections, so only another process choosing the same random
    port in the same instant can collide. Falls back to ``bind(0)``.
    """
    low, _ = _ephemeral_range()
    if low - _LOWEST_PORT >= 1000:
        for _ in range(50):
            port = _random.randrange(_LOWEST_PORT, low)
            if _bindable(host, port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports (see :func:`free_port`)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
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
