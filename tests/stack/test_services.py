"""Ephemeral PostgreSQL and Redis: start, serve, restart, clean up, and say what is missing."""

from __future__ import annotations

import os

import psycopg
import pytest

from stormproof.harness.stack import EphemeralPostgres, EphemeralRedis, MissingBinaryError, find_redis_server


def test_postgres_serves_clones_and_restarts(stormproof_postgres) -> None:
    pg: EphemeralPostgres = stormproof_postgres.service
    pg.create_database("svc_src")
    pg.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (42)", dbname="svc_src")
    pg.create_database("svc_clone", template="svc_src")
    with psycopg.connect(pg.dsn("svc_clone")) as conn:
        assert conn.execute("SELECT x FROM t").fetchone() == (42,)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
    old_pid = pg.process.pid
    pg.restart()
    assert pg.process.pid != old_pid
    with psycopg.connect(pg.dsn("svc_clone")) as conn:
        assert conn.execute("SELECT x FROM t").fetchone() == (42,)
    pg.drop_database("svc_clone")
    pg.drop_database("svc_src")


def test_postgres_runs_unprivileged_when_root(stormproof_postgres) -> None:
    status = open(f"/proc/{stormproof_postgres.service.process.pid}/status").read()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    if os.geteuid() == 0:
        assert uid != 0, "postgres must not run as root"
    else:
        assert uid == os.geteuid()


def test_redis_restart_loses_every_key() -> None:
    with EphemeralRedis() as server:
        client = server.client()
        client.set("lock:x", "token")
        server.restart()
        assert server.client().get("lock:x") is None


def test_cleanup_on_exception() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with EphemeralRedis() as server:
            pid, base = server.process.pid, server.base_dir
            raise RuntimeError("boom")
    assert not os.path.exists(base)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_missing_redis_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMPROOF_REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(MissingBinaryError, match="apt-get install -y redis-server"):
        find_redis_server()


def test_missing_postgres_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from stormproof.harness.stack import binaries

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(binaries, "_pg_config_bindir", lambda: None)
    monkeypatch.setattr(binaries.glob, "glob", lambda pattern: [])
    with pytest.raises(MissingBinaryError, match="apt-get install -y postgresql"):
        binaries.find_postgres_binary("initdb")
