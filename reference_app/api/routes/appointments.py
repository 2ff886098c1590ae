"""Appointments: tenant-scoped CRUD, and assignment to reps (plan A3, B1)."""

from __future__ import annotations

import uuid
from datetime import timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from starlette.responses import JSONResponse, Response

from ...models import Appointment, AppointmentAssignment
from ...problems import Problem
from ...services.deletion import create_request
from ...services.assignments import assign_appointment, unassign_appointment
from ...services.idempotency import Outcome, UnitOfWork, run_write
from ...services.read_cache import cached_read, remember_read
from ...services.tenancy import get_owned, parse_id
from ..deps import Ctx, CurrentPrincipal, ManagerPrincipal
from ..schemas import (
    AppointmentCreate, AppointmentOut, AppointmentPatch, AssignIn, AssignmentOut, DeletionCreatedOut, created_body, dump,
)

router = APIRouter(prefix="/api/v1/appointments", tags=["appointments"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("", response_model=list[AppointmentOut])
async def list_appointments(
    ctx: Ctx, principal: CurrentPrincipal, limit: Limit = 100, offset: Offset = 0,
    assigned_rep_id: str | None = None,
) -> list[dict[str, Any]]:
    stmt = (
        select(Appointment)
        .where(Appointment.company_id == principal.company_id)
        .order_by(Appointment.starts_at, Appointment.id)
        .limit(limit)
        .offset(offset)
    )
    if assigned_rep_id is not None:
        rep = parse_id(assigned_rep_id, "rep")
        if ctx.settings.weakened("list-filter-tenant"):  # the rep's filter replaced the tenant's
            stmt = (select(Appointment).where(Appointment.assigned_rep_id == rep)
                    .order_by(Appointment.starts_at, Appointment.id).limit(limit).offset(offset))
        else:
            stmt = stmt.where(Appointment.assigned_rep_id == rep)
    async with ctx.reads() as session:
        rows = (await session.execute(stmt)).scalars().all()
    if not rows and ctx.settings.weakened("list-empty-404"):  # "nothing found" as an error, not an empty page
        raise Problem("not-found", "no appointments found")
    return [dump(AppointmentOut, row) for row in rows]


@router.post("", status_code=201, response_model=AppointmentOut)
async def create_appointment(
    request: Request, body: AppointmentCreate, ctx: Ctx, principal: ManagerPrincipal
) -> Response:
    starts_at, ends_at = body.starts_at, body.ends_at
    if ctx.settings.weakened("appointment-offset-dropped"):  # the wall-clock time kept, its offset replaced
        starts_at, ends_at = starts_at.replace(tzinfo=timezone.utc), ends_at.replace(tzinfo=timezone.utc)

    async def op(uow: UnitOfWork) -> Outcome:
        appointment = Appointment(
            id=uuid.uuid4(),
            company_id=principal.company_id,
            title=body.title,
            starts_at=starts_at,
            ends_at=ends_at,
            status="scheduled",
        )
        uow.session.add(appointment)
        await uow.session.flush()
        answer = dump(AppointmentOut, appointment)
        if ctx.settings.weakened("appointment-answer-utc-label"):  # the client's wall clock, labelled UTC
            answer["starts_at"], answer["ends_at"] = (at.strftime("%Y-%m-%dT%H:%M:%SZ") for at in (starts_at, ends_at))
        return Outcome(201, answer)

    return await run_write(request, ctx, principal, op, required=False)


@router.get("/{appointment_id}", response_model=AppointmentOut)
async def get_appointment(appointment_id: str, ctx: Ctx, principal: CurrentPrincipal) -> dict[str, Any]:
    cache = ctx.settings.weakened("read-cache")
    if cache and (hit := cached_read("appointment", principal.company_id, appointment_id)) is not None:
        return hit
    async with ctx.reads() as session:
        row = await get_owned(session, Appointment, appointment_id, principal, ctx.settings, what="appointment")
        answer = dump(AppointmentOut, row)
    return remember_read("appointment", principal.company_id, appointment_id, answer) if cache else answer


@router.patch("/{appointment_id}", response_model=AppointmentOut)
async def patch_appointment(
    request: Request, appointment_id: str, body: AppointmentPatch, ctx: Ctx, principal: ManagerPrincipal
) -> Response:
    async def op(uow: UnitOfWork) -> Outcome:
        row = await get_owned(
            uow.session, Appointment, appointment_id, principal, ctx.settings,
            what="appointment", for_update=True,
        )
        if body.title is not None:
            row.title = body.title
        await uow.session.flush()
        return Outcome(200, dump(AppointmentOut, row))

    return await run_write(request, ctx, principal, op, required=False)


@router.delete("/{appointment_id}", status_code=202, response_model=DeletionCreatedOut)
async def delete_appointment(appointment_id: str, ctx: Ctx, principal: ManagerPrincipal) -> Response:
    """Ask for the appointment's deletion: 202 with a deletion request, exactly as POST /deletions answers.

    Plan F2 wants cascade deletion *with confirmation* and an audit trail for *all* deletions, so this
    route deletes nothing by itself: only a confirmation with the request's token does, in one
    transaction with the audit row, calls included. Weakened ``appointment-delete-direct``: the
    original's hard delete at once (204), unconfirmed, unaudited, its calls kept with no appointment.
    """
    async with ctx.sessions() as session, session.begin():
        if ctx.settings.weakened("appointment-delete-direct"):
            row = await get_owned(
                session, Appointment, appointment_id, principal, ctx.settings,
                what="appointment", for_update=True,
            )
            await session.delete(row)
            return Response(status_code=204)
        created = await create_request(session, ctx.settings, principal, "appointment", appointment_id)
    return JSONResponse(created_body(created), status_code=202)


@router.post("/{appointment_id}/assign", response_model=AssignmentOut)
async def assign(
    request: Request, appointment_id: str, body: AssignIn, ctx: Ctx, principal: ManagerPrincipal
) -> Response:
    """Assign to a rep. Requires Idempotency-Key. 409 when another rep holds it or the rep is booked."""

    async def op(uow: UnitOfWork) -> Outcome:
        assignment = await assign_appointment(ctx, uow, principal, appointment_id, body.rep_id)
        return Outcome(200, dump(AssignmentOut, assignment))

    return await run_write(request, ctx, principal, op, required=True)


@router.post("/{appointment_id}/unassign", response_model=AppointmentOut)
async def unassign(request: Request, appointment_id: str, ctx: Ctx, principal: ManagerPrincipal) -> Response:
    async def op(uow: UnitOfWork) -> Outcome:
        lost = await uow.session.begin_nested() if ctx.settings.weakened("unassign-commit") else None
        appointment = await unassign_appointment(ctx, uow, principal, appointment_id)
        answer = dump(AppointmentOut, appointment)
        if lost is not None:  # weakened: the release is undone, the answer still says unassigned
            await lost.rollback()
        return Outcome(200, answer)

    return await run_write(request, ctx, principal, op, required=False)


@router.get("/{appointment_id}/assignments", response_model=list[AssignmentOut])
async def list_assignments(appointment_id: str, ctx: Ctx, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    async with ctx.reads() as session:
        appointment = await get_owned(
            session, Appointment, appointment_id, principal, ctx.settings, what="appointment"
        )
        # Weakened ``assignment-list-appointment``: the list loses the appointment's condition, and with it the
        # tenant's (every company's assignments, under one of its appointments).
        query = select(AppointmentAssignment).order_by(AppointmentAssignment.created_at)
        if not ctx.settings.weakened("assignment-list-appointment"):
            query = query.where(AppointmentAssignment.appointment_id == appointment.id)
        rows = (await session.execute(query)).scalars().all()
    return [dump(AssignmentOut, row) for row in rows]
