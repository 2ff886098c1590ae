"""The legacy recording endpoints (plan B1, P1): same sessions, older shape.

Older clients do not send Idempotency-Key, so it is optional here; when sent,
it is honoured exactly as on the newer endpoints.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...services.idempotency import Outcome, UnitOfWork, run_write
from ...services.recording_sessions import start_session, stop_session
from ..deps import Ctx, CurrentPrincipal
from ..schemas import LegacyRecordingOut, SessionStart

router = APIRouter(prefix="/api/v1/recordings", tags=["recordings (legacy)"])


@router.post("/start", status_code=201, response_model=LegacyRecordingOut)
async def legacy_start(request: Request, body: SessionStart, ctx: Ctx, principal: CurrentPrincipal) -> Response:
    async def op(uow: UnitOfWork) -> Outcome:
        session = await start_session(ctx, uow, principal, body.appointment_id, source="legacy")
        return Outcome(201, LegacyRecordingOut.of(session))

    return await run_write(request, ctx, principal, op, required=False)


@router.post("/{recording_id}/stop", response_model=LegacyRecordingOut)
async def legacy_stop(request: Request, recording_id: str, ctx: Ctx, principal: CurrentPrincipal) -> Response:
    async def op(uow: UnitOfWork) -> Outcome:
        session = await stop_session(ctx, uow, principal, recording_id)
        return Outcome(200, LegacyRecordingOut.of(session))

    return await run_write(request, ctx, principal, op, required=False)
