"""A port taken between our pick and the server's bind costs a retry on a new port, not the run.

The race is real on a busy machine (a parallel run or a container took the
port in the window after :func:`free_port` released it) and ended a CI
rehearsal with an ERROR. Here the "other process" is a listening socket of the
test, and the port picker hands the services that very port first.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psycopg
import pytest

from stormproof.harness.stack import EphemeralPostgres, EphemeralRedis, ServiceStartError
from stormproof.harness.stack import ports as ports_module
from stormproof.harness.stack import postgres as postgres_module
from stormproof.harness.stack import redis as redis_module


@pytest.fixture()
def taken_port() -> Iterator[int]:
    """A loopback port some other process listens on."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        sock.bind(("127.0.0.1", ports_module.free_port()))
        sock.listen()
        yield int(sock.getsockname()[1])


def _first_pick_taken(monkeypatch: pytest.MonkeyPatch, module: object, port: int) -> list[int]:
    """Make ``module``'s free_port hand out ``port`` on its first call, then real free ports."""
    picks: list[int] = []

    def pick(host: str = "127.0.0.1") -> int:
        picks.append(port if not picks else ports_module.free_port(host))
        return picks[-1]

    monkeypatch.setattr(module, "free_port", pick)
    return picks


def test_postgres_moves_to_a_new_port_when_its_pick_was_taken(monkeypatch, taken_port) -> None:
    picks = _first_pick_taken(monkeypatch, postgres_module, taken_port)
    with EphemeralPostgres() as pg:
        assert picks[0] == taken_port and len(picks) == 2
        assert pg.port == picks[1] != taken_port
        with psycopg.connect(pg.dsn()) as conn:
            assert conn.execute("SHOW port").fetchone() == (str(pg.port),)
        assert "Address already in use" in (pg.data_dir.parent / "postgres.log").read_text()


def test_redis_moves_to_a_new_port_when_its_pick_was_taken(monkeypatch, taken_port) -> None:
    picks = _first_pick_taken(monkeypatch, redis_module, taken_port)
    with EphemeralRedis() as server:
        assert picks[0] == taken_port and len(picks) == 2
        assert server.port == picks[1] != taken_port
        assert server.client().ping()


def test_a_port_the_user_chose_is_not_swapped_behind_their_back(taken_port) -> None:
    for service in (EphemeralRedis(port=taken_port), EphemeralPostgres(port=taken_port)):
        try:
            with pytest.raises(ServiceStartError, match="Address already in use"):
                service.start()
        finally:
            service.stop()  # removes the run directory it made
