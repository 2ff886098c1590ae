"""AppFactory.stop: an app stopped in the background is gone once the factory closes, its database dropped."""

from __future__ import annotations

import psycopg

from stormproof.harness.pytest_plugin import AppFactory


def _databases(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database")}


def test_an_app_stopped_without_waiting_is_stopped_by_close(stormproof_postgres, stormproof_redis,
                                                              reference_app_template) -> None:
    """The weakening module evicts apps with ``stop(wait=False)``: close() must still wait for each stop, or the
    processes and databases outlive the module."""
    factory = AppFactory(stormproof_postgres, stormproof_redis, reference_app_template)
    evicted, kept = factory(), factory()
    processes = [app.process.process for app in (evicted, kept) if app.process is not None]
    database = evicted.stack.database_name
    assert len(processes) == 2 and all(p is not None and p.running() for p in processes)
    assert database in _databases(stormproof_postgres.dsn)
    factory.stop(evicted, wait=False)
    assert processes[1].running()
    factory.close()
    assert not any(p is not None and p.running() for p in processes)
    assert database not in _databases(stormproof_postgres.dsn)
