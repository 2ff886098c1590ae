"""The database guards of the plan (B3, A3), as DDL that weakenings can remove.

The migration creates every guard; at start-up the app drops the guards whose
weakening is on and re-creates the others, so one database can serve runs with
and without a fix. This module is the one place that knows their DDL.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

__all__ = ["SchemaGuard", "GUARDS", "apply_guards"]


@dataclass(frozen=True, slots=True)
class SchemaGuard:
    name: str
    table: str
    weakening: str
    kind: str  # "index" or "constraint"
    create_sql: str

    def exists(self, conn: Connection) -> bool:
        if self.kind == "index":
            sql = "SELECT 1 FROM pg_indexes WHERE indexname = :name"
        else:
            sql = "SELECT 1 FROM pg_constraint WHERE conname = :name"
        return conn.execute(text(sql), {"name": self.name}).first() is not None

    def drop_sql(self) -> str:
        if self.kind == "index":
            return f"DROP INDEX IF EXISTS {self.name}"
        return f"ALTER TABLE {self.table} DROP CONSTRAINT IF EXISTS {self.name}"


GUARDS: tuple[SchemaGuard, ...] = (
    SchemaGuard(
        name="idx_recording_sessions_active_appointment",
        table="recording_sessions",
        weakening="session-unique-index",
        kind="index",
        create_sql=(
            "CREATE UNIQUE INDEX IF NOT EXISTS idx_recording_sessions_active_appointment "
            "ON recording_sessions (appointment_id, company_id) "
            "WHERE status IN ('pending', 'recording')"
        ),
    ),
    SchemaGuard(
        name="idx_appointment_assignments_active",
        table="appointment_assignments",
        weakening="assignment-guard",
        kind="index",
        create_sql=(
            "CREATE UNIQUE INDEX IF NOT EXISTS idx_appointment_assignments_active "
            "ON appointment_assignments (appointment_id, company_id) WHERE status = 'active'"
        ),
    ),
    SchemaGuard(
        name="ux_call_analyses_job",
        table="call_analyses",
        weakening="job-db-guard",
        kind="index",
        create_sql=(
            "CREATE UNIQUE INDEX IF NOT EXISTS ux_call_analyses_job "
            "ON call_analyses (shunya_job_id, company_id)"
        ),
    ),
    SchemaGuard(
        name="ex_appointment_assignments_rep_overlap",
        table="appointment_assignments",
        weakening="assignment-guard",
        kind="constraint",
        create_sql=(
            "ALTER TABLE appointment_assignments ADD CONSTRAINT "
            "ex_appointment_assignments_rep_overlap EXCLUDE USING gist "
            "(rep_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) "
            "WHERE (status = 'active')"
        ),
    ),
)


def apply_guards(conn: Connection, weakenings: frozenset[str]) -> None:
    """Drop the guards of weakened fixes and make sure the others exist.

    Serialised with an advisory lock, because every app worker does this at start-up.
    """
    conn.execute(text("SELECT pg_advisory_xact_lock(7316001)"))
    for guard in GUARDS:
        if guard.weakening in weakenings:
            conn.execute(text(guard.drop_sql()))
        elif not guard.exists(conn):
            conn.execute(text(guard.create_sql))
