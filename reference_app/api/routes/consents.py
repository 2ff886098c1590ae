"""Consent evidence for an appointment (plan F3): recorded by any role, required before processing."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from ...models import Appointment, Consent
from ...services.consent import evidence_ip, record_consent
from ...services.idempotency import Outcome, UnitOfWork, run_write
from ...services.tenancy import get_owned
from ..deps import Ctx, CurrentPrincipal
from ..schemas import ConsentIn, ConsentOut, dump

router = APIRouter(prefix="/api/v1/appointments", tags=["consents"])


@router.post("/{appointment_id}/consents", status_code=201, response_model=ConsentOut)
async def create_consent(
    request: Request, appointment_id: str, body: ConsentIn, ctx: Ctx, principal: CurrentPrincipal
) -> Response:
    """Record a consent; the IP and user agent are the request's, so the client cannot choose them."""

    async def op(uow: UnitOfWork) -> Outcome:
        appointment = await get_owned(
            uow.session, Appointment, appointment_id, principal, ctx.settings, what="appointment"
        )
        lost = await uow.session.begin_nested() if ctx.settings.weakened("consent-commit") else None
        evidence = body.evidence
        if ctx.settings.weakened("consent-evidence-normalised"):
            # A tidy-up of the text: edges stripped, line ends and Unicode (NFC) normalised.
            evidence = unicodedata.normalize("NFC", evidence.replace("\r\n", "\n").strip())
        consent = await record_consent(
            uow.session, principal, appointment, scope=body.scope, evidence=evidence,
            ip=evidence_ip(request.client.host if request.client else None,
                           request.headers.get("X-Forwarded-For"), ctx.settings),
            user_agent=request.headers.get("User-Agent"),
        )
        answer = dump(ConsentOut, consent)
        if lost is not None:  # weakened: the write is undone, the answer still names it
            await lost.rollback()
        return Outcome(201, answer)

    return await run_write(request, ctx, principal, op, required=False)


@router.get("/{appointment_id}/consents", response_model=list[ConsentOut])
async def list_consents(
    appointment_id: str, ctx: Ctx, principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    async with ctx.reads() as session:
        appointment = await get_owned(
            session, Appointment, appointment_id, principal, ctx.settings, what="appointment"
        )
        # Weakened ``consent-list-appointment``: the appointment's condition dropped (the tenant's kept), so every
        # consent of the tenant is listed under each of its appointments.
        criteria = [Consent.company_id == principal.company_id]
        if not ctx.settings.weakened("consent-list-appointment"):
            criteria.append(Consent.appointment_id == appointment.id)
        rows = (
            await session.execute(
                select(Consent).where(*criteria).order_by(Consent.granted_at, Consent.id).limit(limit).offset(offset)
            )
        ).scalars().all()
    return [dump(ConsentOut, row) for row in rows]
