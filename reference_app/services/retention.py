"""Retention (plan F1): a company's calls and appointments are deleted once older than its policy.

Deletion runs in bounded batches, each its own short transaction: rows are
picked with ``FOR UPDATE SKIP LOCKED`` (a row a live request holds is left for
the next run instead of waited for), so enforcing retention on a large
backlog never blocks live traffic for longer than one batch. Deletion audit
rows are never touched here: they are the record of what was deleted.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import delete, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..models import (
    Appointment,
    AppointmentAssignment,
    Call,
    CallAnalysis,
    Company,
    Consent,
    DeletionAudit,
    RecordingSession,
    RetentionPolicy,
    ShunyaJob,
)
from ..models.base import utcnow
from ..models.lifecycle import DEFAULT_APPOINTMENT_RETENTION_DAYS, DEFAULT_CALL_RETENTION_DAYS

__all__ = ["EffectivePolicy", "RetentionCounts", "effective_policy", "enforce_retention", "enforce_all"]


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    company_id: uuid.UUID
    call_days: int
    appointment_days: int
    #: True when the company has no row and the defaults apply.
    default: bool


@dataclass
class RetentionCounts:
    """Rows deleted by one run, per table."""

    calls: int = 0
    shunya_jobs: int = 0
    call_analyses: int = 0
    appointments: int = 0
    recording_sessions: int = 0
    appointment_assignments: int = 0
    consents: int = 0
    batches: int = 0

    def add(self, other: "RetentionCounts") -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def effective_policy(session: AsyncSession, company_id: uuid.UUID) -> EffectivePolicy:
    row = await session.get(RetentionPolicy, company_id)
    if row is None:
        return EffectivePolicy(company_id, DEFAULT_CALL_RETENTION_DAYS, DEFAULT_APPOINTMENT_RETENTION_DAYS, True)
    return EffectivePolicy(company_id, row.call_days, row.appointment_days, False)


async def _rowcount(session: AsyncSession, stmt: object) -> int:
    result = await session.execute(stmt)  # type: ignore[call-overload]
    return int(result.rowcount or 0)


async def _lock_batch(session: AsyncSession, column: Any, *conditions: Any, order_by: Any, size: int) -> list[Any]:
    """Ids of up to ``size`` expired rows, locked; rows live traffic holds are skipped, not waited for."""
    stmt = select(column).where(*conditions).order_by(order_by).limit(size).with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars().all())


def _of(column: Any, company_id: uuid.UUID, everyone: bool) -> Any:
    """The company's rows; every company's with the ``retention-tenant-scope`` weakening (one policy for all)."""
    return true() if everyone else column == company_id


async def _call_batch(session: AsyncSession, company_id: uuid.UUID, cutoff: datetime, size: int,
                      everyone: bool = False) -> RetentionCounts:
    ids = await _lock_batch(session, Call.id, _of(Call.company_id, company_id, everyone), Call.created_at < cutoff,
                            order_by=Call.created_at, size=size)
    counts = RetentionCounts(batches=1 if ids else 0)
    if not ids:
        return counts
    counts.call_analyses = await _rowcount(session, delete(CallAnalysis).where(CallAnalysis.call_id.in_(ids)))
    counts.shunya_jobs = await _rowcount(session, delete(ShunyaJob).where(ShunyaJob.call_id.in_(ids)))
    counts.calls = await _rowcount(session, delete(Call).where(Call.id.in_(ids)))
    return counts


async def _appointment_batch(
    session: AsyncSession, company_id: uuid.UUID, cutoff: datetime, size: int, everyone: bool = False,
    from_start: bool = False,
) -> RetentionCounts:
    # An appointment's age counts from its end (weakened ``retention-from-start``: from its start, so one that
    # began before the cutoff and ended after it goes a few hours early).
    age_from = Appointment.starts_at if from_start else Appointment.ends_at
    ids = await _lock_batch(session, Appointment.id, _of(Appointment.company_id, company_id, everyone),
                            age_from < cutoff, order_by=Appointment.ends_at, size=size)
    counts = RetentionCounts(batches=1 if ids else 0)
    if not ids:
        return counts
    # Counted one by one rather than left to ON DELETE CASCADE, so a run reports what it erased.
    counts.consents = await _rowcount(session, delete(Consent).where(Consent.appointment_id.in_(ids)))
    counts.appointment_assignments = await _rowcount(
        session, delete(AppointmentAssignment).where(AppointmentAssignment.appointment_id.in_(ids))
    )
    counts.recording_sessions = await _rowcount(
        session, delete(RecordingSession).where(RecordingSession.appointment_id.in_(ids))
    )
    counts.appointments = await _rowcount(session, delete(Appointment).where(Appointment.id.in_(ids)))
    return counts


async def enforce_retention(
    sessions: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    *,
    batch_size: int = 500,
    now: datetime | None = None,
    weakened_defaults: bool = False,
    weakened_scope: bool = False,
    weakened_audit: bool = False,
    weakened_from_start: bool = False,
    weakened_batch_full: bool = False,
) -> RetentionCounts:
    """Delete the company's expired calls and appointments, ``batch_size`` rows per transaction.

    Calls go first: a call of an expired appointment that is itself still
    within the call retention survives with ``appointment_id`` set to NULL.
    """
    now = now or utcnow()
    async with sessions() as session:
        policy = await effective_policy(session, company_id)
    total = RetentionCounts()
    if policy.default and weakened_defaults:
        return total  # weakened ``retention-defaults``: only companies with a policy of their own are cleaned
    for batch, cutoff in (
        (_call_batch, now - timedelta(days=policy.call_days)),
        (partial(_appointment_batch, from_start=weakened_from_start), now - timedelta(days=policy.appointment_days)),
    ):
        while True:
            async with sessions() as session, session.begin():
                counts = await batch(session, company_id, cutoff, batch_size, weakened_scope)
            total.add(counts)
            # A batch that came back full may have left more: only a short (or empty) one ends the kind. Weakened
            # ``retention-batch-full``: a full one ends it too, so a backlog longer than a batch outlives the run.
            done = max(counts.calls, counts.appointments)
            if counts.batches == 0 or done < batch_size or (weakened_batch_full and done <= batch_size):
                break
    if weakened_audit:  # ``retention-audit``: the record of deletions is cleaned up like the data it records
        async with sessions() as session, session.begin():
            await session.execute(delete(DeletionAudit).where(
                DeletionAudit.company_id == company_id,
                DeletionAudit.executed_at < now - timedelta(days=policy.call_days)))
    return total


async def enforce_all(
    sessions: async_sessionmaker[AsyncSession], *, batch_size: int = 500, now: datetime | None = None,
    weakened_policies_only: bool = False, **weakened: bool,
) -> dict[str, RetentionCounts]:
    """Every company in turn (what the periodic task does); keyed by company id. ``weakened``: the weakenings
    of :func:`enforce_retention`, passed on to each company's run.

    Every company, with a policy of its own or none: a company without one gets the defaults (weakened
    ``retention-schedule-policies``: only the companies with a policy row are visited, so the defaults are
    never enforced by the schedule, the classic loop over the policy table)."""
    async with sessions() as session:
        query = select(RetentionPolicy.company_id) if weakened_policies_only else select(Company.id)
        companies = (await session.execute(query.order_by(query.selected_columns[0]))).scalars().all()
    return {
        str(company): await enforce_retention(sessions, company, batch_size=batch_size, now=now, **weakened)
        for company in companies
    }
