"""The final state a run's checkers judge: database rows read directly, ``/metrics``, the stub's jobs.

Read after the wait for quiescence (``quiesce.py``): load stopped, faults
healed, tasks settled or judged lost or still progressing; that outcome
travels in the snapshot for the checkers. PostgreSQL is read on its own port,
never through the fault proxy.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from ..invariants import TABLES, CheckConfig, Quiescence, Snapshot
from ..invariants.snapshot import COUNTED_TABLES, OPTIONAL_TABLES
from ..stack.system import SystemUnderTest
from .quiesce import QuiescePolicy, quiesce
from .error_logs import read_error_log_traces
from .task_logs import read_task_log_traces

__all__ = ["capture_snapshot", "read_state", "scrape_metrics", "tls", "wait_quiet"]


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every short-lived client: each new httpx client would otherwise load the
    CA bundle again (about 40 ms, 0.2 s of each replay of ``stormproof reproduce``), even for http."""
    return ssl.create_default_context()


def scrape_metrics(stack: SystemUnderTest) -> str:
    """Every process's counters: the stack's own scrape when it has one (docker sums its containers)."""
    scrape = getattr(stack, "scrape_metrics", None)
    if callable(scrape):
        return str(scrape())
    return httpx.get(stack.metrics_url, timeout=10, verify=tls()).text


def _dsn(stack: SystemUnderTest) -> str:
    return stack.check_dsn


def wait_quiet(stack: SystemUnderTest, policy: QuiescePolicy | None = None) -> Quiescence:
    """Wait until the system is idle by its own state (ledger, broker, stub); see :mod:`.quiesce`."""
    broker = getattr(stack, "redis_url", None)  # the broker, read directly (no proxy); None for an external app
    return quiesce(_dsn(stack), broker, stack.shunya_admin_url, policy)


def read_state(dsn: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, int]]]:
    """The snapshot's tables (``TABLES``, row by row) and its rows per company of ``COUNTED_TABLES`` (a counted
    or ``OPTIONAL_TABLES`` table the database lacks left out: an app without an outbox), all from one snapshot
    of the database.

    One REPEATABLE READ transaction: read one statement at a time (READ COMMITTED), a run that ended with work
    still in flight (quiescence's bound expired on a loaded machine) showed a call's analysis but the call as it
    was before the same transaction analysed it (a false job-applied-once, 2026-12-05).
    """
    tables: dict[str, list[dict[str, Any]]] = {}
    counted: dict[str, dict[str, int]] = {}
    with psycopg.connect(dsn, connect_timeout=5, row_factory=dict_row) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        for table, columns in TABLES.items():
            if table in OPTIONAL_TABLES and not _exists(conn, table):
                continue
            tables[table] = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()  # noqa: S608
        for table in COUNTED_TABLES:
            if _exists(conn, table):
                counted[table] = {str(row["company_id"]): int(row["n"]) for row in conn.execute(
                    f"SELECT company_id, count(*) AS n FROM {table} GROUP BY company_id")}  # noqa: S608
    return tables, counted


def _exists(conn: psycopg.Connection[dict[str, Any]], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) AS t", (table,)).fetchone()
    return row is not None and row["t"] is not None


def capture_snapshot(stack: SystemUnderTest, *, baseline_metrics: str | None, config: CheckConfig,
                     quiescence: Quiescence | None = None,
                     gauge_samples: tuple[Mapping[str, float], ...] | None = None, metrics: bool = True) -> Snapshot:
    """The final state; ``metrics=False`` leaves ``/metrics`` out (for checkers that do not read it)."""
    tables, counted = read_state(_dsn(stack))
    known = {row["shunya_job_id"] for row in tables["shunya_jobs"] if row["shunya_job_id"]}
    expected: dict[str, str] = {}
    completed: set[str] | None = None
    failed: set[str] | None = None
    stuck: set[str] | None = None
    stats: dict[str, int] | None = None
    calls: list[tuple[float, str]] | None = None
    job_calls: dict[str, str] | None = None
    if stack.shunya_admin_url is not None:
        stats = httpx.get(f"{stack.shunya_admin_url}/admin/stats", timeout=10, verify=tls()).json()
        calls = [(at, who) for at, who in
                 httpx.get(f"{stack.shunya_admin_url}/admin/calls", timeout=30, verify=tls()).json()["calls"]]
        jobs = httpx.get(f"{stack.shunya_admin_url}/admin/jobs", timeout=10, verify=tls()).json()["jobs"]
        completed, failed, stuck = set(), set(), set()
        job_calls = {str(job["job_id"]): str(job.get("call_id")) for job in jobs if job.get("job_id")}
        for job in jobs:
            if job.get("stuck") and job.get("status") == "pending" and job.get("job_id") in known:
                stuck.add(job["job_id"])
            if job.get("status") == "failed" and job.get("job_id") in known:
                failed.add(job["job_id"])
            # Jobs the app never recorded (a submission retried after a lost answer) are not its to apply.
            if job.get("status") == "completed" and job.get("job_id") in known:
                completed.add(job["job_id"])
                if job.get("output_hash"):
                    expected[job["job_id"]] = job["output_hash"]
    log_dir = stack.log_dir  # read once: a container stack saves its logs each time it is asked
    return Snapshot.build(
        tables,
        metrics_text=scrape_metrics(stack) if metrics else None,
        baseline_text=baseline_metrics,
        expected_outputs=expected,
        completed_jobs=completed,
        failed_jobs=failed,
        stuck_jobs=stuck,
        upstream_stats=stats,
        upstream_calls=calls,
        upstream_job_calls=job_calls,
        gauge_samples=gauge_samples,
        task_log_traces=read_task_log_traces(log_dir),
        error_log_traces=read_error_log_traces(log_dir),
        rows_by_company=counted,
        config=config,
        quiescence=quiescence,
    )
