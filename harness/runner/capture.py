"""The final state a run's checkers judge: database rows read directly, ``/metrics``, the stub's jobs.

Read after the system is quiet: load stopped, faults healed, tasks settled.
PostgreSQL is read on its own port, never through the fault proxy.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from ..invariants import TABLES, CheckConfig, Snapshot
from ..stack.system import SystemUnderTest

__all__ = ["capture_snapshot", "scrape_metrics", "wait_quiet"]


def scrape_metrics(stack: SystemUnderTest) -> str:
    """Every process's counters: the stack's own scrape when it has one (docker sums its containers)."""
    scrape = getattr(stack, "scrape_metrics", None)
    if callable(scrape):
        return str(scrape())
    return httpx.get(stack.metrics_url, timeout=10).text


def _dsn(stack: SystemUnderTest) -> str:
    return stack.check_dsn


def _in_flight(stack: SystemUnderTest) -> int:
    with psycopg.connect(_dsn(stack), connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM task_records WHERE state IN ('queued', 'running', 'retrying')").fetchone()
    return int(row[0]) if row else 0


def _stub_pending(stack: SystemUnderTest) -> int:
    if stack.shunya_admin_url is None:
        return 0
    stats = httpx.get(f"{stack.shunya_admin_url}/admin/stats", timeout=5).json()
    return int(stats.get("deliveries_pending", 0))


def wait_quiet(stack: SystemUnderTest, timeout: float) -> tuple[bool, float]:
    """Wait until no task is in flight and the stub has nothing left to deliver; (quiet, seconds waited)."""
    started = time.monotonic()
    while True:
        try:
            if _in_flight(stack) == 0 and _stub_pending(stack) == 0:
                return True, time.monotonic() - started
        except (psycopg.Error, httpx.HTTPError):
            pass
        if time.monotonic() - started > timeout:
            return False, time.monotonic() - started
        time.sleep(0.25)


def capture_snapshot(stack: SystemUnderTest, *, baseline_metrics: str | None, config: CheckConfig) -> Snapshot:
    tables: dict[str, list[dict[str, Any]]] = {}
    with psycopg.connect(_dsn(stack), connect_timeout=5, row_factory=dict_row) as conn:
        for table, columns in TABLES.items():
            tables[table] = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()  # noqa: S608
    known = {row["shunya_job_id"] for row in tables["shunya_jobs"] if row["shunya_job_id"]}
    expected: dict[str, str] = {}
    completed: set[str] | None = None
    if stack.shunya_admin_url is not None:
        jobs = httpx.get(f"{stack.shunya_admin_url}/admin/jobs", timeout=10).json()["jobs"]
        completed = set()
        for job in jobs:
            # Jobs the app never recorded (a submission retried after a lost answer) are not its to apply.
            if job.get("status") == "completed" and job.get("job_id") in known:
                completed.add(job["job_id"])
                if job.get("output_hash"):
                    expected[job["job_id"]] = job["output_hash"]
    return Snapshot.build(
        tables,
        metrics_text=scrape_metrics(stack),
        baseline_text=baseline_metrics,
        expected_outputs=expected,
        completed_jobs=completed,
        config=config,
    )
