"""Assigning appointments to reps (plan A3): one assignee per appointment, no rep double-booked.

Guards, each switchable off by name: the Redis lock
``appointment:assign:{appointment_id}`` (``assignment-lock``); and the
database (``assignment-guard``): row locks on the appointment and on the rep that
serialise assigners, a partial unique index allowing one active assignment per
appointment, and an exclusion constraint that keeps a rep's active
assignments from overlapping in time.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, true
from sqlalchemy.exc import IntegrityError

from ..auth import Principal
from ..context import AppContext
from ..models import Appointment, AppointmentAssignment, User
from ..models.base import utcnow
from ..obs.metrics import METRICS
from ..problems import Problem
from .idempotency import UnitOfWork
from .tenancy import get_owned

__all__ = ["assign_appointment", "unassign_appointment", "ACTIVE_INDEX", "OVERLAP_CONSTRAINT"]

ACTIVE_INDEX = "idx_appointment_assignments_active"
OVERLAP_CONSTRAINT = "ex_appointment_assignments_rep_overlap"


async def _active_assignment(uow: UnitOfWork, appointment: Appointment) -> AppointmentAssignment | None:
    stmt = (
        select(AppointmentAssignment)
        .where(
            AppointmentAssignment.appointment_id == appointment.id,
            AppointmentAssignment.company_id == appointment.company_id,
            AppointmentAssignment.status == "active",
        )
        .order_by(AppointmentAssignment.created_at)
        .limit(1)
    )
    return (await uow.session.execute(stmt)).scalar_one_or_none()


async def _latest_assignment(uow: UnitOfWork, appointment: Appointment) -> AppointmentAssignment | None:
    """Weakened ``appointment-released-counted``: the appointment's latest assignment, whatever its status."""
    stmt = (
        select(AppointmentAssignment)
        .where(
            AppointmentAssignment.appointment_id == appointment.id,
            AppointmentAssignment.company_id == appointment.company_id,
        )
        .order_by(AppointmentAssignment.created_at.desc())
        .limit(1)
    )
    return (await uow.session.execute(stmt)).scalar_one_or_none()


async def _rep_overlap(
    ctx: AppContext, uow: UnitOfWork, appointment: Appointment, rep: User
) -> AppointmentAssignment | None:
    # Weakened ``rep-overlap-released``: the rep's released assignments are counted too.
    active = true() if ctx.settings.weakened("rep-overlap-released") else AppointmentAssignment.status == "active"
    stmt = (
        select(AppointmentAssignment)
        .where(
            AppointmentAssignment.rep_id == rep.id,
            active,
            AppointmentAssignment.appointment_id != appointment.id,
            AppointmentAssignment.starts_at < appointment.ends_at,
            AppointmentAssignment.ends_at > appointment.starts_at,
        )
        .limit(1)
    )
    return (await uow.session.execute(stmt)).scalar_one_or_none()


def _already_assigned(current: AppointmentAssignment | None) -> Problem:
    return Problem(
        "appointment-already-assigned",
        "the appointment is assigned to another rep; unassign it first",
        assigned_rep_id=str(current.rep_id) if current else None,
    )


def _double_booked(rep: User, other: AppointmentAssignment | None) -> Problem:
    return Problem(
        "rep-double-booked",
        "the rep has another appointment overlapping this window",
        rep_id=str(rep.id),
        conflicting_appointment_id=str(other.appointment_id) if other else None,
    )


async def assign_appointment(
    ctx: AppContext,
    uow: UnitOfWork,
    principal: Principal,
    appointment_id: str | uuid.UUID,
    rep_id: str | uuid.UUID,
) -> AppointmentAssignment:
    """Assign; assigning the current assignee again answers the existing assignment."""
    guarded = not ctx.settings.weakened("assignment-guard")
    appointment = await get_owned(
        uow.session, Appointment, appointment_id, principal, ctx.settings,
        what="appointment", for_update=guarded,
    )
    # The rep's row too: two assigns of one rep to overlapping appointments (different appointment locks)
    # otherwise both pass the overlap check and meet in the exclusion constraint, where PostgreSQL sees each
    # waiting on the other's insert (deadlock detected: a 500 instead of 409 rep-double-booked). Locked after
    # the appointment, in the same order by every assign.
    rep = await get_owned(uow.session, User, rep_id, principal, ctx.settings, what="rep", for_update=guarded)
    if rep.role != "rep":
        raise Problem("not-found", "rep not found")
    if not ctx.settings.weakened("assignment-lock"):
        await uow.after.enter_async_context(
            ctx.locks.hold(f"appointment:assign:{appointment.id}", kind="assign")
        )
    current = await _active_assignment(uow, appointment)
    if current is None and ctx.settings.weakened("appointment-released-counted"):
        latest = await _latest_assignment(uow, appointment)  # released: another rep is refused as if it held
        if latest is not None and latest.rep_id != rep.id:
            raise _already_assigned(latest)
    if current is not None:
        if current.rep_id == rep.id and not ctx.settings.weakened("reassign-idempotent"):
            return current
        raise _already_assigned(current)
    other = await _rep_overlap(ctx, uow, appointment, rep)
    if other is not None:
        raise _double_booked(rep, other)
    await ctx.race_window(f"assign:{appointment.id}")
    assignment = AppointmentAssignment(
        id=uuid.uuid4(),
        company_id=appointment.company_id,
        appointment_id=appointment.id,
        rep_id=rep.id,
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        status="active",
        created_at=utcnow(),
    )
    try:
        async with uow.session.begin_nested():
            uow.session.add(assignment)
            appointment.assigned_rep_id = rep.id
    except IntegrityError as exc:
        message = str(exc.orig)
        if ACTIVE_INDEX in message:
            METRICS.guard_rejections.labels(ACTIVE_INDEX).inc()
            current = await _active_assignment(uow, appointment)
            if current is not None and current.rep_id == rep.id and not ctx.settings.weakened("reassign-idempotent"):
                return current  # a concurrent assign of the same rep won the race: answer its assignment
            raise _already_assigned(current) from None
        if OVERLAP_CONSTRAINT in message:
            METRICS.guard_rejections.labels(OVERLAP_CONSTRAINT).inc()
            raise _double_booked(rep, None) from None
        raise
    METRICS.assignments.inc()
    return assignment


async def unassign_appointment(
    ctx: AppContext, uow: UnitOfWork, principal: Principal, appointment_id: str | uuid.UUID
) -> Appointment:
    appointment = await get_owned(
        uow.session, Appointment, appointment_id, principal, ctx.settings,
        what="appointment", for_update=True,
    )
    rows = (
        await uow.session.execute(
            select(AppointmentAssignment).where(
                AppointmentAssignment.appointment_id == appointment.id,
                AppointmentAssignment.status == "active",
            )
        )
    ).scalars()
    # Weakened ``unassign-idempotent``: the original expected the one active assignment (scalar_one), so
    # unassigning an appointment nobody holds raised (500) instead of answering it unassigned.
    held = [rows.one()] if ctx.settings.weakened("unassign-idempotent") else list(rows)
    if not held and ctx.settings.weakened("unassign-refuses-unassigned"):
        # Weakened: a "nothing to release" 409 (a common reading of REST), where the contract answers the
        # appointment unassigned: a client retrying a lost answer, or two managers unassigning, is told no.
        raise Problem("conflict", "the appointment is not assigned")
    now = utcnow()
    for row in held:
        row.status = "released"
        row.released_at = now
    appointment.assigned_rep_id = None
    await uow.session.flush()
    return appointment
