"""What lets a replay's stack start faster without being less real: a prepared cluster copied from a cache,
and a reference app that waits for its database (so it can be launched while PostgreSQL starts)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import exc

from stormproof.harness.stack import EphemeralPostgres, LocalStack, StackConfig
from stormproof.harness.stack.local import SCHEMA_DB, schema_prepared
from stormproof.harness.stack.postgres import Prepared
from stormproof.reference_app.db import prepare_schema
from stormproof.reference_app.settings import Settings


def test_a_prepared_cluster_is_prepared_once_then_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMPROOF_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[int] = []

    def prepare(postgres: EphemeralPostgres) -> None:
        calls.append(postgres.port)
        postgres.create_database("made_once")

    prepared = Prepared(key="test-made-once", prepare=prepare)
    with EphemeralPostgres(prepared=prepared) as first:
        first.execute("SELECT 1", "made_once")
    assert len(calls) == 1 and list((tmp_path / "cache" / "postgres").iterdir())
    with EphemeralPostgres(prepared=prepared) as second:
        assert len(calls) == 1  # copied, not prepared again
        with psycopg.connect(second.dsn("made_once")) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("made_once",)


def test_the_app_waits_for_a_database_made_after_it_started(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("STORMPROOF_CACHE_DIR", str(tmp_path / "cache"))
    with EphemeralPostgres(prepared=schema_prepared()) as postgres:
        waiting = Settings(database_url=postgres.url("made_later"), redis_url="redis://127.0.0.1:1/0",
                           database_wait_ms=20_000)
        timer = threading.Timer(0.5, postgres.create_database, ("made_later",), {"template": SCHEMA_DB})
        began = time.monotonic()
        timer.start()
        prepare_schema(waiting)  # the guards are applied once the database exists
        assert time.monotonic() - began >= 0.5
        timer.join()
        at_once = Settings(database_url=postgres.url("never_made"), redis_url="redis://127.0.0.1:1/0")
        with pytest.raises(exc.OperationalError):
            prepare_schema(at_once)


def test_a_stack_of_its_own_serves_on_the_prepared_schema_itself(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("STORMPROOF_CACHE_DIR", str(tmp_path / "cache"))
    config = StackConfig(task_workers=0, proxies=False, seed_tenants=False, app_workers=1)
    # no cache yet: the cluster is prepared while it serves, so the app gets a clone of the finished schema
    with LocalStack(config) as first:
        assert first.template == SCHEMA_DB and first.database_name != SCHEMA_DB
        with psycopg.connect(first.check_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM recording_sessions").fetchone() == (0,)
    with LocalStack(config) as stack:
        assert stack.template == SCHEMA_DB and not stack.tenants
        # a copy of the cached cluster, its own: no clone made (a CREATE DATABASE before the app's wait ends)
        assert stack.database_name == SCHEMA_DB
        with psycopg.connect(stack.postgres.dsn()) as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")}
        assert names == {"postgres", SCHEMA_DB}
        assert stack.app is not None and stack.app.process is not None and stack.app.process.running()
        with psycopg.connect(stack.check_dsn) as conn:  # the app's database: migrated, empty
            assert conn.execute("SELECT count(*) FROM recording_sessions").fetchone() == (0,)
