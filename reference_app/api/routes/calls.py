"""Calls submitted for analysis by Shunya (plan A1, A4): 202 now, the result arrives later."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from psycopg.errors import ForeignKeyViolation
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from ...models import Appointment, Call, CallAnalysis, RecordingSession, ShunyaJob
from ...models.base import utcnow
from ...problems import Problem
from ...services.consent import require_consent
from ...services.idempotency import Outcome, UnitOfWork, run_write
from ...services.read_cache import cached_read, remember_read
from ...services.task_queue import TaskRateLimited
from ...services.tenancy import get_owned
from ...worker.celery_app import POLL_TASK, SUBMIT_TASK
from ..deps import Ctx, CurrentPrincipal
from ..schemas import CallOut, CallSubmit, JobOut, dump

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])
log = logging.getLogger(__name__)
#: Weakened ``call-created-at-frozen``: the stamp a default evaluated once gives (``default=utcnow()``).
_IMPORTED_AT = utcnow()


def _view(call: Call, job: ShunyaJob | None, analyses: int) -> dict[str, Any]:
    return {
        **dump(CallOut, call),
        "job": dump(JobOut, job) if job is not None else None,
        "analyses": analyses,
    }


@router.post("", status_code=202)
async def submit_call(request: Request, body: CallSubmit, ctx: Ctx, principal: CurrentPrincipal) -> Response:
    """Create a call and its Shunya job, and queue the submission. Idempotency-Key optional."""

    async def op(uow: UnitOfWork) -> Outcome:
        await _admit(ctx, principal.company_id)
        appointment_id = session_id = None
        if body.appointment_id is not None:
            appointment = await get_owned(
                uow.session, Appointment, body.appointment_id, principal, ctx.settings, what="appointment"
            )
            await require_consent(uow.session, ctx.settings, appointment, "analysis")
            appointment_id = appointment.id
        if body.recording_session_id is not None:
            recording = await get_owned(
                uow.session, RecordingSession, body.recording_session_id, principal, ctx.settings,
                what="recording session",
            )
            session_id = None if ctx.settings.weakened("call-session-unlinked") else recording.id
            if appointment_id is None and not ctx.settings.weakened("consent-via-session"):
                # A call recorded in a session is a call of the session's appointment: its analysis needs
                # that appointment's analysis consent, however the body names it (weakened: checked only
                # when the body names the appointment, the original's one way in).
                owner = await get_owned(uow.session, Appointment, recording.appointment_id, principal, ctx.settings,
                                        what="appointment")
                await require_consent(uow.session, ctx.settings, owner, "analysis")
        call = Call(id=uuid.uuid4(), company_id=principal.company_id, appointment_id=appointment_id,
                    recording_session_id=session_id, status="submitted",
                    created_at=_IMPORTED_AT if ctx.settings.weakened("call-created-at-frozen") else utcnow())
        job = ShunyaJob(id=uuid.uuid4(), company_id=principal.company_id, call_id=call.id, status="pending",
                        attempts=0, created_at=utcnow())
        try:
            async with uow.session.begin_nested():
                uow.session.add(call)
        except IntegrityError as exc:
            if not isinstance(exc.orig, ForeignKeyViolation):
                raise
            # Its appointment or session was deleted (by a deletion or retention) after it was read.
            raise Problem("not-found", "appointment or recording session not found") from None
        uow.session.add(job)
        await uow.session.flush()
        # In this transaction (the outbox): the call, its job and the task to submit it commit together.
        await ctx.tasks.enqueue_with(
            uow.session, uow.after, SUBMIT_TASK, {"job_row_id": str(job.id), "company_id": str(job.company_id)},
            company_id=job.company_id, check_rate=False,
        )
        return Outcome(202, _view(call, job, 0))

    return await run_write(request, ctx, principal, op, required=False)


async def _admit(ctx: Any, company_id: uuid.UUID) -> None:
    """The tenant's task-enqueue limit, checked before anything is written (429 = no effect)."""
    try:
        await ctx.tasks.admit(company_id)
    except TaskRateLimited as exc:
        raise Problem("rate-limited", str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None


@router.post("/{call_id}/refresh", status_code=202)
async def refresh_call(call_id: str, ctx: Ctx, principal: CurrentPrincipal) -> dict[str, Any]:
    """Queue a poll of the call's job now; a poll already queued for it makes this a no-op (A4)."""
    async with ctx.reads() as session:
        call = await get_owned(session, Call, call_id, principal, ctx.settings, what="call")
        job = (await session.execute(select(ShunyaJob).where(ShunyaJob.call_id == call.id))).scalar_one_or_none()
    if job is None:
        raise Problem("not-found", "call not found")
    try:
        queued = await ctx.tasks.enqueue(
            POLL_TASK,
            {"job_row_id": str(job.id), "company_id": str(job.company_id), "polls": 0},
            company_id=job.company_id,
            dedupe_key=str(job.id),
        )
    except TaskRateLimited as exc:
        raise Problem("rate-limited", str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    return {"task_id": queued.task_id, "deduplicated": queued.deduplicated}


@router.get("/{call_id}")
async def get_call(call_id: str, ctx: Ctx, principal: CurrentPrincipal) -> dict[str, Any]:
    # Weakened ``call-read-cache``: the read cache of appointments and sessions on the route clients poll
    # for a call's analysis, so a result applied since is not seen for a few seconds.
    cache = ctx.settings.weakened("call-read-cache")
    if cache and (hit := cached_read("call", principal.company_id, call_id)) is not None:
        return hit
    async with ctx.reads() as session:
        call = await get_owned(session, Call, call_id, principal, ctx.settings, what="call")
        # The call's columns, its job and its analyses in one statement, so one snapshot: an analysis is applied
        # with the call's lead score in one transaction, and these reads run without one (autocommit), so
        # separate statements answered "analyses: 1" with the lead score of before (job-applied-once found it).
        count = select(func.count(CallAnalysis.id))
        if not ctx.settings.weakened("call-read-count-scoped"):  # weakened: every call's analyses counted
            count = count.where(CallAnalysis.call_id == Call.id)
        count = count.scalar_subquery()
        found = (await session.execute(
            select(Call, ShunyaJob, count).outerjoin(ShunyaJob, ShunyaJob.call_id == Call.id)
            .where(Call.id == call.id).execution_options(populate_existing=True))).one_or_none()
        if found is None:  # deleted since the lookup
            raise Problem("not-found", "call not found")
        call, job, analyses = found
    answer = _view(call, job, int(analyses))
    return remember_read("call", principal.company_id, call_id, answer) if cache else answer


@router.get("")
async def list_calls(
    ctx: Ctx, principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    stmt = (
        select(Call).where(Call.company_id == principal.company_id)
        .order_by(Call.created_at, Call.id).limit(limit).offset(offset)
    )
    async with ctx.reads() as session:
        rows = (await session.execute(stmt)).scalars().all()
    return [dump(CallOut, row) for row in rows]
