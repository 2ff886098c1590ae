"""Consent evidence (plan F3): nothing is recorded or analysed for an appointment without it.

A consent row is evidence, so it keeps where it came from (the caller's IP
and user agent, taken from the request, never from the body) and when. The
check runs inside the writer's transaction, so a consent recorded before the
request is always seen; the ``consent-check`` weakening removes it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth import Principal
from ..models import Appointment, Consent
from ..models.base import utcnow
from ..problems import Problem
from ..settings import Settings

__all__ = ["evidence_ip", "record_consent", "require_consent"]

_UA_MAX = 512
_IP_MAX = 64


def evidence_ip(client_host: str | None, forwarded_for: str | None, settings: Settings) -> str | None:
    """The IP a consent is evidence of: the connection's peer, never a header the client wrote.

    Whoever calls can put any address in X-Forwarded-For, so evidence taken from
    it proves nothing; the ``consent-forwarded-for`` weakening takes it anyway.
    """
    if settings.weakened("consent-forwarded-for") and forwarded_for:
        return forwarded_for.split(",", 1)[0].strip() or client_host
    return client_host


#: Built once (issue 17): a statement built per call paid its construction and cache-key walk each time.
_HAS_CONSENT = (
    select(Consent.id)
    .where(
        Consent.appointment_id == bindparam("appointment_id"),
        Consent.company_id == bindparam("company_id"),
        Consent.scope == bindparam("scope"),
    )
    .limit(1)
)

#: Weakened ``consent-latest-scope``: the appointment's latest consent decides, whatever its scope.
_LATEST_CONSENT = text(
    "SELECT scope FROM consents WHERE appointment_id = :appointment_id AND company_id = :company_id "
    "ORDER BY granted_at DESC, id DESC LIMIT 1"
)


async def require_consent(session: AsyncSession, settings: Settings, appointment: Appointment, scope: str) -> None:
    """409 ``consent-required`` unless the appointment has a consent of ``scope``."""
    if settings.weakened("consent-check"):
        return
    params = {"appointment_id": appointment.id, "company_id": appointment.company_id, "scope": scope}
    if settings.weakened("consent-latest-scope"):
        latest = (await session.execute(_LATEST_CONSENT, params)).scalar()
        found = latest if latest == scope else None
    else:
        found = (await session.execute(_HAS_CONSENT, params)).first()
    if found is None:
        raise Problem(
            "consent-required",
            f"the appointment has no {scope} consent; record one with "
            f"POST /api/v1/appointments/{appointment.id}/consents",
            appointment_id=str(appointment.id),
            scope=scope,
        )


async def record_consent(
    session: AsyncSession,
    principal: Principal,
    appointment: Appointment,
    *,
    scope: str,
    evidence: str,
    ip: str | None,
    user_agent: str | None,
) -> Consent:
    consent = Consent(
        id=uuid.uuid4(),
        company_id=appointment.company_id,
        appointment_id=appointment.id,
        scope=scope,
        granted_at=utcnow(),
        ip=(ip or None) and ip[:_IP_MAX],
        user_agent=(user_agent or None) and user_agent[:_UA_MAX],
        evidence=evidence,
        recorded_by=principal.user_id,
        created_at=utcnow(),
    )
    session.add(consent)
    await session.flush()
    return consent
