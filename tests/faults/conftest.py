"""Fixtures: a real TCP echo server, an in-process fault proxy, clients."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from stormproof.harness.faults import ProxyInfo, RunningServer, ToxiproxyClient, serve_in_thread


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(10.0)
        try:
            for _ in range(1_000_000):  # bounded: at most this many reads
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(data)
        except OSError:
            return


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_addr() -> Iterator[tuple[str, int]]:
    """A threaded echo server on 127.0.0.1; yields (host, port)."""
    server = _EchoServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fault_server() -> Iterator[RunningServer]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture
def client(fault_server: RunningServer) -> Iterator[ToxiproxyClient]:
    with ToxiproxyClient(fault_server.url, timeout=5.0) as c:
        yield c


@pytest.fixture
def proxy(client: ToxiproxyClient, echo_addr: tuple[str, int]) -> ProxyInfo:
    return client.create_proxy("echo", upstream=f"{echo_addr[0]}:{echo_addr[1]}")


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    for _ in range(100_000):
        if got >= size:
            break
        data = sock.recv(min(65536, size - got))
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def recv_until_eof(sock: socket.socket, limit: int = 10 << 20) -> bytes:
    chunks: list[bytes] = []
    got = 0
    for _ in range(100_000):
        data = sock.recv(65536)
        if not data or got > limit:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds for ``payload`` to come back through the echo server."""
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - start
