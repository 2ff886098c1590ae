"""Hard deletion with confirmation and audit (plan F2).

Two steps, so that one mistaken request cannot erase data: a manager asks
(``create_request``) and sees what would go, counted per table, with a
confirmation token shown once; confirming with that token
(``confirm_request``) deletes everything in one transaction and writes a
``deletion_audit`` row in the same transaction, so a deletion without its
audit record cannot exist.

Scopes:

- ``appointment``: the appointment (the contact's data), its consents,
  assignments and recording sessions, and the calls made for it or its
  sessions, with their Shunya jobs and analyses;
- ``company``: all of the tenant's data. Kept on purpose: the ``companies``
  row, the tenant's managers (``users`` with role manager, whom audit rows
  name, and who must still be able to read the audit) and every
  ``deletion_audit`` row. Reps are deleted. State in Redis (locks, dedupe
  marks, rate buckets) expires by itself and holds no personal data.

Idempotency-Key responses stored for an appointment-scope deletion's rows
are not rewritten; they expire with the key's TTL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth import Principal
from ..models import (
    Appointment,
    AppointmentAssignment,
    Call,
    CallAnalysis,
    Company,
    Consent,
    DeadLetter,
    DeletionAudit,
    DeletionRequest,
    IdempotencyKey,
    OutboxRow,
    RecordingSession,
    RetentionPolicy,
    ShunyaJob,
    TaskRecord,
    User,
)
from ..models.base import utcnow
from ..problems import Problem
from ..settings import Settings
from .tenancy import get_owned, parse_id

__all__ = ["CreatedDeletion", "confirm_request", "create_request", "deletion_plan"]


@dataclass(frozen=True)
class _Step:
    """One table of a cascade: delete ``model`` rows matching ``where``, in this order."""

    table: str
    model: Any
    where: ColumnElement[bool]


@dataclass(frozen=True)
class CreatedDeletion:
    request: DeletionRequest
    token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: The tables of an appointment's calls, which the ``deletion-cascade`` weakening forgets.
_CALL_TABLES = frozenset(("call_analyses", "shunya_jobs", "calls"))


def deletion_plan(scope: str, company_id: uuid.UUID, target_id: uuid.UUID,
                  settings: Settings | None = None) -> Sequence[_Step]:
    """The tables a deletion touches, children before parents (foreign keys allow no other order)."""
    weakened = settings.weakened if settings is not None else (lambda name: False)
    if scope == "appointment":
        sessions = select(RecordingSession.id).where(
            RecordingSession.appointment_id == target_id, RecordingSession.company_id == company_id
        )
        calls = select(Call.id).where(
            Call.company_id == company_id,
            or_(Call.appointment_id == target_id, Call.recording_session_id.in_(sessions)),
        )
        return (
            _Step("call_analyses", CallAnalysis, CallAnalysis.call_id.in_(calls)),
            _Step("shunya_jobs", ShunyaJob, ShunyaJob.call_id.in_(calls)),
            _Step("calls", Call, Call.id.in_(calls)),
            _Step("recording_sessions", RecordingSession, RecordingSession.id.in_(sessions)),
            _Step("appointment_assignments", AppointmentAssignment,
                  (AppointmentAssignment.appointment_id == target_id)
                  & (AppointmentAssignment.company_id == company_id)),
            _Step("consents", Consent, (Consent.appointment_id == target_id) & (Consent.company_id == company_id)),
            _Step("appointments", Appointment, (Appointment.id == target_id) & (Appointment.company_id == company_id)),
        )
    if scope == "company":
        # Weakened ``company-deletion-scope``: the consents of every company; ``company-deletion-side-tables``:
        # the dead letters and the retention policy left behind.
        consents = true() if weakened("company-deletion-scope") else Consent.company_id == company_id
        side = ("dead_letters", "retention_policies") if weakened("company-deletion-side-tables") else ()
        # Weakened ``company-deletion-pending-work``: the outbox rows and idempotency keys left behind.
        side += ("outbox", "idempotency_keys") if weakened("company-deletion-pending-work") else ()
        return tuple(step for step in (
            _Step("call_analyses", CallAnalysis, CallAnalysis.company_id == company_id),
            _Step("shunya_jobs", ShunyaJob, ShunyaJob.company_id == company_id),
            _Step("calls", Call, Call.company_id == company_id),
            _Step("recording_sessions", RecordingSession, RecordingSession.company_id == company_id),
            _Step("appointment_assignments", AppointmentAssignment, AppointmentAssignment.company_id == company_id),
            _Step("consents", Consent, consents),
            _Step("appointments", Appointment, Appointment.company_id == company_id),
            _Step("users", User, (User.company_id == company_id) & (User.role == "rep")),
            _Step("idempotency_keys", IdempotencyKey, IdempotencyKey.company_id == company_id),
            _Step("outbox", OutboxRow, OutboxRow.company_id == company_id),
            _Step("task_records", TaskRecord, TaskRecord.company_id == company_id),
            _Step("dead_letters", DeadLetter, DeadLetter.company_id == company_id),
            _Step("retention_policies", RetentionPolicy, RetentionPolicy.company_id == company_id),
        ) if step.table not in side)
    raise ValueError(f"unknown deletion scope {scope!r}")


async def _count(session: AsyncSession, steps: Sequence[_Step]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.table] = int(
            (await session.execute(select(func.count()).select_from(step.model).where(step.where))).scalar_one()
        )
    return counts


async def _target(
    session: AsyncSession, settings: Settings, principal: Principal, scope: str, raw_id: str | uuid.UUID,
    *, for_update: bool = False,
) -> uuid.UUID:
    """The target's id, after checking it is the caller's: another tenant's id is a 404."""
    if scope == "appointment":
        appointment = await get_owned(
            session, Appointment, raw_id, principal, settings, what="appointment", for_update=for_update
        )
        return appointment.id
    company_id = parse_id(raw_id, "company")
    if settings.weakened("company-deletion-target"):
        # Weakened: the company looked up, never compared with the caller's (an admin route's habit).
        if await session.get(Company, company_id) is None:
            raise Problem("not-found", "company not found")
        return company_id
    if company_id != principal.company_id:
        raise Problem("not-found", "company not found")
    return company_id


async def create_request(
    session: AsyncSession, settings: Settings, principal: Principal, scope: str, target_id: str
) -> CreatedDeletion:
    target = await _target(session, settings, principal, scope, target_id)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    request = DeletionRequest(
        id=uuid.uuid4(),
        company_id=principal.company_id,
        requested_by=principal.user_id,
        scope=scope,
        target_id=target,
        token_hash=_hash(token),
        counts=await _count(session, deletion_plan(scope, principal.company_id, target, settings)),
        status="pending",
        expires_at=now + timedelta(seconds=settings.deletion_confirm_ttl_seconds),
        created_at=now,
    )
    session.add(request)
    await session.flush()
    return CreatedDeletion(request, token)


async def confirm_request(
    session: AsyncSession, settings: Settings, principal: Principal, request_id: str, token: str,
    race_window: Callable[..., Awaitable[None]] | None = None,
) -> DeletionAudit:
    """Delete the target's rows and write the audit row, all in the caller's one transaction.

    ``race_window`` is the app's documented pause between the pending check and the deletion (tests
    only: :meth:`AppContext.race_window`), where a second confirmation sent at once meets this one.
    """
    # Weakened ``deletion-confirm-lock``: the request read without its row lock, so a second confirmation
    # sent at once (a double click) finds it pending too and runs the deletion again.
    request = await get_owned(
        session, DeletionRequest, request_id, principal, settings, what="deletion request",
        for_update=not settings.weakened("deletion-confirm-lock"),
    )
    if settings.weakened("deletion-token-lookup"):
        # The request the token belongs to, found by the token: a tenant's other pending request's token
        # confirms that other request, whatever request the URL names.
        found = (await session.execute(
            select(DeletionRequest)
            .where(DeletionRequest.company_id == principal.company_id, DeletionRequest.token_hash == _hash(token))
            .with_for_update()
        )).scalar_one_or_none()
        request = found if found is not None else request
    # Weakened ``deletion-reconfirm``: only a token check stood between an executed request and a second run.
    reconfirm = settings.weakened("deletion-reconfirm") and request.status == "executed"
    # Weakened ``deletion-pending-status``: the status a new request has under an earlier schema's name.
    pending = "requested" if settings.weakened("deletion-pending-status") else "pending"
    # Weakened ``not-pending-not-found``: a request no longer pending answered as if it did not exist.
    not_pending = "not-found" if settings.weakened("not-pending-not-found") else "deletion-not-pending"
    if request.status != pending and not reconfirm:
        raise Problem(not_pending, "this deletion was already executed", deletion_id=str(request.id))
    # Weakened ``deletion-token``: the original only checked that a token was sent.
    if not hmac.compare_digest(request.token_hash, _hash(token)) and not settings.weakened("deletion-token"):
        raise Problem("confirmation-token-invalid", "the confirmation token does not match this request")
    if race_window is not None:
        await race_window(f"deletion-confirm:{request.id}", barrier_only=True)
    now = utcnow()
    # Weakened ``deletion-expiry``: expires_at stored and shown, never compared.
    if request.expires_at <= now and not settings.weakened("deletion-expiry"):
        raise Problem(not_pending, "the confirmation token expired; create a new request",
                      deletion_id=str(request.id))
    if request.scope == "appointment":
        # Lock the appointment, so a session start racing the deletion waits, then finds it gone.
        await session.execute(
            select(Appointment.id)
            .where(Appointment.id == request.target_id, Appointment.company_id == request.company_id)
            .with_for_update()
        )
    counts: dict[str, int] = {}
    for step in deletion_plan(request.scope, request.company_id, request.target_id, settings):
        if request.scope == "appointment" and step.table in _CALL_TABLES and settings.weakened("deletion-cascade"):
            continue  # weakened: the calls outlive their appointment, unlinked by ON DELETE SET NULL
        result = await session.execute(delete(step.model).where(step.where))
        counts[step.table] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if request.scope == "company":
        # The tenant's other pending requests go too (their targets are gone); executed ones stay
        # beside their audit rows.
        # Weakened ``company-deletion-requests-scope``: every tenant's pending requests;
        # ``company-deletion-keeps-own-request``: the one being executed too.
        criteria = [DeletionRequest.status == "pending"]
        if not settings.weakened("company-deletion-requests-scope"):
            criteria.append(DeletionRequest.company_id == request.company_id)
        if not settings.weakened("company-deletion-keeps-own-request"):
            criteria.append(DeletionRequest.id != request.id)
        await session.execute(delete(DeletionRequest).where(*criteria))
    request.status = "executed"
    if settings.weakened("deletion-audit-counts"):
        # The original counted the row it deleted and let ON DELETE CASCADE take the rest, uncounted.
        counts = {table: n for table, n in counts.items() if table in ("appointments", "companies")}
    audit = DeletionAudit(
        id=request.id,
        company_id=request.company_id,
        requested_by=request.requested_by,
        confirmed_by=principal.user_id,
        scope=request.scope,
        target_id=request.target_id,
        counts=counts,
        requested_at=request.created_at,
        executed_at=now,
    )
    if reconfirm:
        audit = await session.merge(audit)
    elif not settings.weakened("deletion-audit"):
        session.add(audit)
    await session.flush()
    return audit
