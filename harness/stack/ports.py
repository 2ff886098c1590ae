"""Free loopback ports and waiting for a port to accept connections: the one place for both."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import lru_cache

from .errors import ServiceStartError

__all__ = ["PORT_TRIES", "free_port", "free_ports", "port_was_taken", "start_on_a_free_port", "wait_for_port",
           "wait_until"]

#: Where service ports are drawn from when the ephemeral range leaves room below it.
_LOWEST_PORT = 10000
_random = random.SystemRandom()

#: How many ports a service we place ourselves tries before its start fails (see :func:`port_was_taken`).
PORT_TRIES = 4
#: How long a port handed out stays reserved against the other harness processes of this machine.
RESERVE_S = 180.0
#: The machine's reservations: every harness process (a run, a verify, a soak, a test worker) reads and writes it.
_RESERVATIONS = os.path.join(tempfile.gettempdir(), "stormproof-ports.json")


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
    port. That is not rare: a stack picks its ports seconds before its services
    bind them, and two runs side by side (a soak beside a verify, 2026-12-05:
    "[Errno 98] Address already in use" for an app) drew the same one. So a
    port handed out is reserved for :data:`RESERVE_S` in a file every harness
    process of the machine shares (under a lock), and no other draws it.
    Falls back to ``bind(0)``.
    """
    low, _ = _ephemeral_range()
    if low - _LOWEST_PORT >= 1000:
        with _reservations() as reserved:
            for _ in range(50):
                port = _random.randrange(_LOWEST_PORT, low)
                if str(port) not in reserved and _bindable(host, port):
                    reserved[str(port)] = time.time() + RESERVE_S
                    return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _reservations() -> Iterator[dict[str, float]]:
    """The machine's live reservations (port -> until), locked, written back on exit.

    Best effort: a file that cannot be opened or read (another user's, a read-only /tmp) reserves nothing,
    and the draw is then as good as a random one.
    """
    try:
        fd = os.open(_RESERVATIONS, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield {}
        return
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            loaded = json.loads(f.read() or "{}")
        except ValueError:
            loaded = {}
        now = time.time()
        live = {port: until for port, until in loaded.items() if isinstance(until, (int, float)) and until > now} \
            if isinstance(loaded, dict) else {}
        yield live
        f.seek(0)
        f.truncate()
        f.write(json.dumps(live))


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
