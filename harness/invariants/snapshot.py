"""The final state a run is checked against: database rows and metrics.

Rows are plain read-only mappings, one tuple per table, taken after the
faults are healed and the system has quiesced. Values are normalised so that
checkers compare like with like whatever the database driver returned:

- UUIDs are their canonical strings;
- timestamps are floats, unix seconds (``datetime`` values and ISO-8601
  strings are converted; a naive datetime is taken as UTC);
- everything else is kept as the driver gave it.

A table that was not captured is ``None``, not empty: a checker that needs it
answers ``unknown`` instead of passing on missing evidence. The same holds
for ``metrics`` and ``completed_jobs``.

``quiescence`` says whether the system went idle before the snapshot (see
``stormproof.harness.runner.quiesce``): the checkers of background work read it to tell
work that was lost (a violation) from work still progressing (``unknown``).
None: not measured (a snapshot built by hand); the checkers then fall back to
``CheckConfig.max_in_flight_tasks``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from stormproof.harness.invariants.config import CheckConfig
from stormproof.harness.invariants.metrics import parse_metrics

__all__ = ["COUNTED_TABLES", "OPTIONAL_TABLES", "Quiescence", "Row", "Snapshot", "TABLES", "TIMESTAMP_COLUMNS", "normalise_row",
           "timestamp_seconds"]

Row = Mapping[str, Any]

#: The tables a snapshot holds, and the columns the checkers read.
TABLES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "appointments": ("id", "company_id", "title", "starts_at", "ends_at", "status", "assigned_rep_id"),
    "appointment_assignments": ("id", "company_id", "appointment_id", "rep_id", "starts_at", "ends_at", "status",
                                "created_at", "released_at"),
    "recording_sessions": ("id", "company_id", "appointment_id", "started_by", "status", "source", "created_at",
                           "stopped_at"),
    "calls": ("id", "company_id", "appointment_id", "recording_session_id", "status", "lead_score", "outcome",
              "created_at"),
    "shunya_jobs": ("id", "company_id", "call_id", "shunya_job_id", "status", "processed_output_hash",
                    "processed_at"),
    "call_analyses": ("id", "company_id", "call_id", "shunya_job_id", "output_hash", "result", "applied_by"),
    "task_records": ("task_id", "name", "company_id", "dedupe_key", "state", "attempts", "created_at",
                     "finished_at", "args", "tries", "trace_id", "last_error"),
    "dead_letters": ("id", "company_id", "task_id", "task_name", "error", "attempts", "status", "retried_task_id"),
    "consents": ("id", "company_id", "appointment_id", "scope", "granted_at", "ip", "user_agent", "evidence"),
    "deletion_audit": ("id", "company_id", "scope", "target_id", "counts", "executed_at"),
    # Every request stays but the pending ones of a deleted company (docs/API.md, "Deletion"); read where the
    # database has the table (``OPTIONAL_TABLES``).
    "deletion_requests": ("id", "company_id", "scope", "target_id", "status"),
    # The table's key is company_id; it is also read as ``id`` so that every table has one.
    "retention_policies": ("company_id AS id", "company_id", "call_days", "appointment_days"),
    # Who exists, by role: a company deletion takes the company's reps and keeps its managers, and takes
    # nobody of another company (plan F2).
    "users": ("id", "company_id", "role"),
})

#: Tables of ``TABLES`` read only where the database has them (None otherwise: the rules on them not judged).
#: Why: an app under test (``--app-command``) may keep its deletion requests elsewhere; the rows every rule
#: needs are required, these extras are not.
OPTIONAL_TABLES: frozenset[str] = frozenset(("deletion_requests",))

#: Tables counted per company, not read row by row (``Snapshot.rows_by_company``).
COUNTED_TABLES: tuple[str, ...] = ("outbox", "idempotency_keys")

TIMESTAMP_COLUMNS: frozenset[str] = frozenset(
    ("starts_at", "ends_at", "created_at", "released_at", "stopped_at", "processed_at", "finished_at",
     "retried_at", "granted_at", "executed_at")
)


def timestamp_seconds(value: Any) -> Any:
    """A datetime or an ISO-8601 text as unix seconds (naive: UTC); anything else as it is.

    Raises ValueError for a text that is not ISO-8601."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        return timestamp_seconds(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return value


def normalise_row(row: Mapping[str, Any]) -> Row:
    """A read-only copy of a database row with UUIDs as str and timestamps as float."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif key in TIMESTAMP_COLUMNS and value is not None:
            value = timestamp_seconds(value)
        out[key] = value
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class Quiescence:
    """How the wait for an idle system ended, before the snapshot was taken.

    - ``quiet``: no task queued, running or retrying in the ledger or the broker,
      and no upstream delivery pending;
    - ``waited_s``: how long the wait took;
    - ``backlog``: work left when it ended (ledger tasks in flight + stub deliveries pending);
    - ``reason``: one line for the report ("idle", "not quiet after 90 s: ...");
    - ``lost_tasks``: ids of tasks in flight in the ledger that no broker message or
      worker holds: nothing will ever finish them;
    - ``pending``: work left that may still finish (a message waiting, reserved by a
      worker or a retry due later; deliveries the stub has yet to send).
    """

    quiet: bool
    waited_s: float
    backlog: int = 0
    reason: str = "idle"
    lost_tasks: frozenset[str] = frozenset()
    pending: int = 0

    def __post_init__(self) -> None:
        if type(self.lost_tasks) is not frozenset:
            object.__setattr__(self, "lost_tasks", frozenset(self.lost_tasks))
        if self.quiet and (self.backlog or self.lost_tasks or self.pending):
            raise ValueError("a quiet system has no backlog")

    def summary(self) -> str:
        """The report's phrase: "quiesced in 12.3 s" or "not quiet after 90 s: ..."."""
        if self.quiet:
            return f"quiesced in {self.waited_s:.1f} s"
        return self.reason

    def to_dict(self) -> dict[str, Any]:
        """The ``quiescence`` object of result.json."""
        return {"quiet": self.quiet, "waited_s": round(self.waited_s, 3), "backlog": self.backlog,
                "reason": self.reason}


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Final database rows, metrics and upstream facts, plus the checker config.

    ``baseline`` is the metrics at the start of the run: counters are compared
    as ``metrics - baseline``. ``expected_outputs`` maps a Shunya job id to the
    output hash the upstream stub produced (may be empty); ``completed_jobs``
    are the job ids the stub completed (None: not known), ``failed_jobs``
    the ones it failed (no output to apply), ``stuck_jobs`` the ones it never
    finished (``stuck_rate``: pending for good, no webhook). ``upstream_stats``
    are the stub's own counters since it started (``GET /admin/stats``: API
    calls, errors it injected, jobs it failed); None: no stub, or not read.
    ``upstream_calls`` are the API calls the stub served (``GET /admin/calls``:
    unix seconds and company id each, oldest first); None: not read.
    ``upstream_job_calls`` maps every job the stub created (answered 2xx with
    its id) to the call it was created for; None: not read.
    ``gauge_samples`` are the gauges scraped during the load, each with the
    broker's own queue length read just before and just after
    (``stormproof.harness.runner.sampling``); None: not sampled.
    ``task_log_traces`` are the trace ids on each task's end-of-run log lines
    (``stormproof.harness.runner.task_logs``); None: no such log read.
    ``error_log_traces`` count the app's error log lines by their trace id (None: a
    line without one; ``stormproof.harness.runner.error_logs``); None: no such log read.
    """

    appointments: tuple[Row, ...] | None = None
    appointment_assignments: tuple[Row, ...] | None = None
    recording_sessions: tuple[Row, ...] | None = None
    calls: tuple[Row, ...] | None = None
    shunya_jobs: tuple[Row, ...] | None = None
    call_analyses: tuple[Row, ...] | None = None
    task_records: tuple[Row, ...] | None = None
    dead_letters: tuple[Row, ...] | None = None
    consents: tuple[Row, ...] | None = None
    deletion_audit: tuple[Row, ...] | None = None
    deletion_requests: tuple[Row, ...] | None = None
    retention_policies: tuple[Row, ...] | None = None
    users: tuple[Row, ...] | None = None
    metrics: Mapping[str, float] | None = None
    baseline: Mapping[str, float] = field(default_factory=_empty, hash=False)
    expected_outputs: Mapping[str, str] = field(default_factory=_empty, hash=False)
    completed_jobs: frozenset[str] | None = None
    failed_jobs: frozenset[str] | None = None
    stuck_jobs: frozenset[str] | None = None
    upstream_stats: Mapping[str, Any] | None = field(default=None, hash=False)
    gauge_samples: tuple[Mapping[str, float], ...] | None = field(default=None, hash=False)
    upstream_calls: tuple[tuple[float, str], ...] | None = field(default=None, hash=False)
    upstream_job_calls: Mapping[str, str] | None = field(default=None, hash=False)
    task_log_traces: Mapping[str, tuple[str | None, ...]] | None = field(default=None, hash=False)
    error_log_traces: Mapping[str | None, int] | None = field(default=None, hash=False)
    #: Rows per company of the tables no checker reads row by row (``COUNTED_TABLES``: the outbox, the
    #: idempotency keys), table -> company id -> rows; a table the database lacks is absent; None: not read.
    #: Why: a company deletion must empty them too (plan F2), and a deletion that kept its outbox rows (or
    #: took every other company's) passed every rule while only the row-by-row tables were read (2026-12-05).
    rows_by_company: Mapping[str, Mapping[str, int]] | None = field(default=None, hash=False)
    config: CheckConfig = field(default_factory=CheckConfig)
    quiescence: Quiescence | None = None

    def __post_init__(self) -> None:
        for name in TABLES:
            rows = getattr(self, name)
            if rows is not None and type(rows) is not tuple:
                object.__setattr__(self, name, tuple(rows))
        if self.metrics is not None and type(self.metrics) is not MappingProxyType:
            object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        for name in ("baseline", "expected_outputs"):
            value = getattr(self, name)
            if type(value) is not MappingProxyType:
                object.__setattr__(self, name, MappingProxyType(dict(value)))
        if self.gauge_samples is not None and type(self.gauge_samples) is not tuple:
            object.__setattr__(self, "gauge_samples", tuple(self.gauge_samples))
        if self.upstream_calls is not None and type(self.upstream_calls) is not tuple:
            object.__setattr__(self, "upstream_calls", tuple((float(at), str(who)) for at, who in self.upstream_calls))
        if self.upstream_stats is not None and type(self.upstream_stats) is not MappingProxyType:
            object.__setattr__(self, "upstream_stats", MappingProxyType(dict(self.upstream_stats)))
        if self.completed_jobs is not None and type(self.completed_jobs) is not frozenset:
            object.__setattr__(self, "completed_jobs", frozenset(self.completed_jobs))

    def table(self, name: str) -> tuple[Row, ...] | None:
        """The rows of table ``name``, or None when it was not captured."""
        if name not in TABLES:
            raise KeyError(f"unknown snapshot table {name!r}")
        rows: tuple[Row, ...] | None = getattr(self, name)
        return rows

    def with_config(self, config: CheckConfig) -> Snapshot:
        return replace(self, config=config)

    @classmethod
    def build(
        cls,
        tables: Mapping[str, Iterable[Mapping[str, Any]]],
        *,
        metrics_text: str | None = None,
        baseline_text: str | None = None,
        expected_outputs: Mapping[str, str] | None = None,
        completed_jobs: Iterable[str] | None = None,
        failed_jobs: Iterable[str] | None = None,
        stuck_jobs: Iterable[str] | None = None,
        upstream_stats: Mapping[str, Any] | None = None,
        gauge_samples: Iterable[Mapping[str, float]] | None = None,
        upstream_calls: Iterable[tuple[float, str]] | None = None,
        upstream_job_calls: Mapping[str, str] | None = None,
        task_log_traces: Mapping[str, tuple[str | None, ...]] | None = None,
        error_log_traces: Mapping[str | None, int] | None = None,
        rows_by_company: Mapping[str, Mapping[str, int]] | None = None,
        config: CheckConfig | None = None,
        quiescence: Quiescence | None = None,
    ) -> Snapshot:
        """A snapshot from raw driver rows and ``/metrics`` texts, normalising values."""
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise ValueError(f"unknown snapshot tables: {sorted(unknown)}")
        rows = {name: tuple(normalise_row(row) for row in table_rows) for name, table_rows in tables.items()}
        return cls(
            **rows,
            metrics=None if metrics_text is None else parse_metrics(metrics_text),
            baseline=parse_metrics(baseline_text) if baseline_text else {},
            expected_outputs=dict(expected_outputs or {}),
            completed_jobs=None if completed_jobs is None else frozenset(completed_jobs),
            failed_jobs=None if failed_jobs is None else frozenset(failed_jobs),
            stuck_jobs=None if stuck_jobs is None else frozenset(stuck_jobs),
            upstream_stats=upstream_stats,
            gauge_samples=None if gauge_samples is None else tuple(gauge_samples),
            upstream_calls=None if upstream_calls is None else tuple((float(at), str(who))
                                                                     for at, who in upstream_calls),
            upstream_job_calls=None if upstream_job_calls is None else {
                str(job): str(call) for job, call in upstream_job_calls.items()},
            task_log_traces=task_log_traces,
            error_log_traces=None if error_log_traces is None else dict(error_log_traces),
            rows_by_company=None if rows_by_company is None else {table: dict(counts) for table, counts
                                                                   in rows_by_company.items()},
            config=config or CheckConfig(),
            quiescence=quiescence,
        )
