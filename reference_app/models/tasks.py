"""Background work bookkeeping: every enqueued task, and the tasks that ran out of retries.

``task_records`` is the ledger the harness's dead-letter accounting reads:
every enqueue is a row, and at the end each row is ``succeeded``,
``dead_lettered`` or still in flight. Nothing may vanish between.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, func, literal, literal_column
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedAt, new_id

__all__ = ["TaskRecord", "DeadLetter", "TASK_STATES", "try_started", "try_rearmed"]

TASK_STATES = ("queued", "running", "retrying", "succeeded", "dead_lettered", "dropped")


class TaskRecord(CreatedAt, Base):
    __tablename__ = "task_records"
    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    company_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    trace_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Per-try events (see migration 0005): when each try began, and the wait each retry chose.
    tries: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")


def _event(**fields: Any) -> Any:
    """One event: ``fields`` plus ``at``, PostgreSQL's clock in unix seconds (all times in ``tries``: one clock)."""
    at = func.jsonb_build_object(literal_column("'at'"), func.extract("epoch", func.clock_timestamp()))
    return literal(fields, JSONB).op("||")(at)


def _appended(event: Any) -> Any:
    return TaskRecord.tries.op("||")(func.jsonb_build_array(event))


def try_started() -> Any:
    """The ``tries`` value after a try begins (an UPDATE's SET expression)."""
    return _appended(_event(event="start"))


def try_rearmed(wait_s: float, failure: int | None, throttled: bool) -> Any:
    """The ``tries`` value after a try ends with a retry (``failure`` tries failed so far) or the next poll (None)."""
    return _appended(_event(event="retry", wait_s=float(wait_s), failure=failure, throttled=bool(throttled)))


def try_refused() -> Any:
    """The ``tries`` value after a failed try whose retry the tenant's retry budget refused (plan C1)."""
    return _appended(_event(event="refused"))


class DeadLetter(CreatedAt, Base):
    __tablename__ = "dead_letters"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, index=True)
    task_id: Mapped[str] = mapped_column(String(64))
    task_name: Mapped[str] = mapped_column(String(100))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    trace_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="dead")
    retried_task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    retried_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
