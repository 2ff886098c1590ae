"""Recording sessions (plan A2, B1): start and stop require an Idempotency-Key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from ...models import RecordingSession
from ...services.idempotency import Outcome, UnitOfWork, run_write
from ...services.read_cache import cached_read, remember_read
from ...services.recording_sessions import start_session, stop_session
from ...services.tenancy import get_owned, parse_id
from ..deps import Ctx, CurrentPrincipal
from ..schemas import SessionOut, SessionStart, dump

router = APIRouter(prefix="/api/v1/recordings/sessions", tags=["recording sessions"])


@router.post("/start", status_code=201, response_model=SessionOut)
async def start(request: Request, body: SessionStart, ctx: Ctx, principal: CurrentPrincipal) -> Response:
    """Start a session; 409 active-session-exists when one is pending or recording."""

    async def op(uow: UnitOfWork) -> Outcome:
        session = await start_session(ctx, uow, principal, body.appointment_id, source="sessions")
        return Outcome(201, dump(SessionOut, session))

    return await run_write(request, ctx, principal, op, required=True)


@router.post("/{session_id}/stop", response_model=SessionOut)
async def stop(request: Request, session_id: str, ctx: Ctx, principal: CurrentPrincipal) -> Response:
    async def op(uow: UnitOfWork) -> Outcome:
        session = await stop_session(ctx, uow, principal, session_id)
        return Outcome(200, dump(SessionOut, session))

    return await run_write(request, ctx, principal, op, required=True)


@router.get("", response_model=list[SessionOut])
async def list_sessions(
    ctx: Ctx,
    principal: CurrentPrincipal,
    appointment_id: str | None = None,
    status: Annotated[str | None, Query(pattern="^(pending|recording|stopped|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    stmt = (
        select(RecordingSession)
        .where(RecordingSession.company_id == principal.company_id)
        .order_by(RecordingSession.created_at, RecordingSession.id)
        .limit(limit)
        .offset(offset)
    )
    if appointment_id is not None:
        stmt = stmt.where(RecordingSession.appointment_id == parse_id(appointment_id, "appointment"))
    if status is not None and not ctx.settings.weakened("session-list-status-filter"):
        stmt = stmt.where(RecordingSession.status == status)  # weakened: the filter read, never applied
    async with ctx.reads() as session:
        rows = (await session.execute(stmt)).scalars().all()
    return [dump(SessionOut, row) for row in rows]


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(session_id: str, ctx: Ctx, principal: CurrentPrincipal) -> dict[str, Any]:
    cache = ctx.settings.weakened("read-cache")
    if cache and (hit := cached_read("session", principal.company_id, session_id)) is not None:
        return hit
    async with ctx.reads() as session:
        row = await get_owned(
            session, RecordingSession, session_id, principal, ctx.settings, what="recording session"
        )
        if ctx.settings.weakened("session-read-latest"):
            # Weakened: the "current recording" of the session's appointment answered, the view the UI polls.
            row = (await session.execute(
                select(RecordingSession).where(RecordingSession.appointment_id == row.appointment_id,
                                               RecordingSession.company_id == row.company_id)
                .order_by(RecordingSession.created_at.desc()).limit(1))).scalar_one()
        answer = dump(SessionOut, row)
    return remember_read("session", principal.company_id, session_id, answer) if cache else answer
