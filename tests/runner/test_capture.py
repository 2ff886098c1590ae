"""The final-state snapshot reads every table from one snapshot of the database, against a real stack.

A run whose quiescence bound expired ends with work still in flight; read one
statement at a time, the snapshot showed a call's analysis beside the call as
it was before the transaction that analysed it (a false job-applied-once on a
loaded machine, 2026-12-05).
"""

from __future__ import annotations

from typing import Any

import psycopg

from stormproof.harness.invariants import CheckConfig
from stormproof.harness.runner import capture


class _CommitsBetweenReads:
    """A connection that lets another client commit a change of the last table after the first table is read."""

    def __init__(self, conn: psycopg.Connection, dsn: str, change: str) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_dsn", dsn)
        object.__setattr__(self, "_change", change)
        object.__setattr__(self, "_reads", 0)

    def __enter__(self) -> "_CommitsBetweenReads":
        self._conn.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._conn.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)

    def execute(self, query: str, *args: Any) -> Any:
        result = self._conn.execute(query, *args)
        object.__setattr__(self, "_reads", self._reads + 1)
        if self._reads == 1:
            with psycopg.connect(self._dsn, autocommit=True) as other:
                other.execute(self._change)
        return result


def test_every_table_comes_from_one_snapshot(reference_app, monkeypatch) -> None:
    app = reference_app(tenants=1)
    dsn = app.stack.check_dsn
    with psycopg.connect(dsn) as conn:
        managers = conn.execute("SELECT count(*) FROM users WHERE role = 'manager'").fetchone()[0]
    assert managers >= 1
    real_connect = psycopg.connect

    class _Psycopg:
        IsolationLevel = psycopg.IsolationLevel

        @staticmethod
        def connect(*args: Any, **kwargs: Any) -> _CommitsBetweenReads:
            return _CommitsBetweenReads(real_connect(*args, **kwargs), dsn,
                                        "UPDATE users SET role = 'rep' WHERE role = 'manager'")

    monkeypatch.setattr(capture, "psycopg", _Psycopg)
    snapshot = capture.capture_snapshot(app.stack, baseline_metrics=None, config=CheckConfig(), metrics=False)
    # the change committed after the first table was read is not in the users the snapshot holds
    assert sum(1 for row in snapshot.users or () if row.get("role") == "manager") == managers
    with psycopg.connect(dsn) as conn:  # and it did commit
        assert conn.execute("SELECT count(*) FROM users WHERE role = 'manager'").fetchone()[0] == 0
