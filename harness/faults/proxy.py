"""A named TCP proxy: its listener, its live connections, its toxics.

Semantics follow Toxiproxy's proxy.go: disabling stops the listener (new
connections are refused) and closes every live connection; changing listen
or upstream restarts it; the reported ``listen`` is the address actually
bound (so port 0 reveals the chosen port).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from dataclasses import dataclass, field
from typing import Any

from stormproof.harness.faults.errors import ApiError, bad_request
from stormproof.harness.faults.link import Connection
from stormproof.harness.faults.toxic_collection import DIRECTIONS, ToxicCollection

__all__ = ["Proxy", "ProxyCounters", "parse_address", "format_address"]

#: Hostless listen addresses (":8080", "") bind loopback: a test harness
#: should never expose a fault proxy on every interface by accident.
DEFAULT_LISTEN_HOST = "127.0.0.1"


def parse_address(address: str, *, default_host: str | None = None) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port``; raise ApiError(400) when malformed."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise bad_request(f"address {address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        if default_host is None:
            raise bad_request(f"address {address!r} has no host")
        host = default_host
    return host, int(port_text)


def format_address(sockname: tuple[Any, ...]) -> str:
    """``host:port`` as Go prints it (IPv6 in brackets)."""
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(slots=True)
class ProxyCounters:
    """Totals of connections already closed (live ones are summed at scrape)."""

    connections_total: int = 0
    closed_received: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRECTIONS, 0))
    closed_sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRECTIONS, 0))


class Proxy:
    """One proxy; all methods run on the server's event loop."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen or f"{DEFAULT_LISTEN_HOST}:0"
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection()
        self.counters = ProxyCounters()
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._upstream_addr = parse_address(upstream)

    # -- JSON ----------------------------------------------------------------
    def to_json(self, *, with_toxics: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
        }
        if with_toxics:
            data["toxics"] = [entry.to_json() for entry in self.toxics.entries()]
        return data

    # -- lifecycle -----------------------------------------------------------
    async def start(self) -> None:
        """Bind and accept; ApiError(500) with Go's wording if the bind fails."""
        if self.enabled:
            return
        host, port = parse_address(self.listen, default_host=DEFAULT_LISTEN_HOST)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._accept, host, port, reuse_address=True, family=socket.AF_UNSPEC
            )
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise ApiError(f"listen tcp {self.listen}: bind: {reason}", 500) from None
        self.listen = format_address(self._server.sockets[0].getsockname())
        self.enabled = True

    async def stop(self) -> None:
        """Stop listening and close every live connection."""
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self._connections):
            conn.close()

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Toxiproxy's Proxy.Update: address change restarts, then apply enabled."""
        if listen != self.listen or upstream != self.upstream:
            new_upstream = parse_address(upstream)
            await self.stop()
            self.listen = listen or f"{DEFAULT_LISTEN_HOST}:0"
            self.upstream = upstream
            self._upstream_addr = new_upstream
        if enabled != self.enabled:
            if enabled:
                await self.start()
            else:
                await self.stop()

    # -- connections ---------------------------------------------------------
    def _accept(self) -> Any:
        return Connection(self).client

    def upstream_address(self) -> tuple[str, int]:
        return self._upstream_addr

    def connection_opened(self, conn: Connection) -> None:
        if not self.enabled:  # accepted in the instant before the listener closed
            conn.close()
            return
        self._connections.add(conn)
        self.counters.connections_total += 1

    def connection_closed(self, conn: Connection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self._account(conn, self.counters.closed_received, self.counters.closed_sent)

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    def byte_totals(self) -> tuple[dict[str, int], dict[str, int]]:
        """(received, sent) per direction, closed plus live connections."""
        received = dict(self.counters.closed_received)
        sent = dict(self.counters.closed_sent)
        for conn in self._connections:
            self._account(conn, received, sent)
        return received, sent

    @staticmethod
    def _account(conn: Connection, received: dict[str, int], sent: dict[str, int]) -> None:
        for link in conn.links:
            received[link.direction] += link.received
            sent[link.direction] += link.sent

