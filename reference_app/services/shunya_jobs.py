"""Applying a Shunya job's result exactly once (plan A1), whoever brings it.

The webhook and the polling task race for the same job. Three layers:

1. the Redis lock ``shunya_job:{job_id}`` keeps them from working at once
   (weakening ``job-lock``);
2. the idempotency check on ``processed_output_hash``;
3. the database's last word (weakening ``job-db-guard``): a conditional update
   that marks the job processed only if nobody did, and a unique index on
   ``call_analyses`` per job. A holder paused past the lock's TTL, or a Redis
   restart, can let two appliers in; this layer still lets one through.

The side effects (the analysis row, the call's lead score and outcome) happen
in the same transaction as the mark, so they are applied once with it.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..context import AppContext
from ..models import Call, CallAnalysis, ShunyaJob
from ..models.base import utcnow
from ..obs.metrics import METRICS
from .unit_of_work import UnitOfWork, run_in_transaction

__all__ = ["ApplyOutcome", "JobResult", "apply_job_result", "ANALYSIS_INDEX"]

ANALYSIS_INDEX = "ux_call_analyses_job"


class ApplyOutcome(str, enum.Enum):
    applied = "applied"
    duplicate = "duplicate"
    failed_recorded = "failed_recorded"
    unknown_job = "unknown_job"


@dataclass(frozen=True, slots=True)
class JobResult:
    """What Shunya says about a finished job, from a webhook or a poll."""

    shunya_job_id: str
    status: str  # "completed" or "failed"
    result: dict[str, Any] | None
    output_hash: str | None
    error: str | None = None
    #: The call the sender says the job is for (webhooks only); read only by the ``job-match-by-call`` weakening.
    call_id: str | None = None


async def apply_job_result(ctx: AppContext, job: JobResult, *, source: str) -> ApplyOutcome:
    async def op(uow: UnitOfWork) -> ApplyOutcome:
        return await _apply(ctx, uow, job, source)

    return await run_in_transaction(ctx.sessions, op)


def _count_duplicate(ctx: AppContext, source: str) -> None:
    """A duplicate is a dedupe hit (weakened ``dedupe-metrics``: counted as a miss, as the original did)."""
    counter = METRICS.webhook_dedupe_misses if ctx.settings.weakened("dedupe-metrics") else METRICS.webhook_dedupe_hits
    # Weakened ``dedupe-hit-source``: every duplicate is the webhook's (a label copied from the webhook route).
    counter.labels("webhook" if ctx.settings.weakened("dedupe-hit-source") else source).inc()


async def _apply(ctx: AppContext, uow: UnitOfWork, job: JobResult, source: str) -> ApplyOutcome:
    session = uow.session
    match = ShunyaJob.shunya_job_id == job.shunya_job_id
    if job.call_id is not None and ctx.settings.weakened("job-match-by-call"):
        # The original found the job through the delivery's call (one job per call, it assumed), so a late
        # delivery of a job superseded for the same call (a resubmission) was applied as the call's result.
        try:
            match = ShunyaJob.call_id == uuid.UUID(job.call_id)
        except ValueError:
            return ApplyOutcome.unknown_job
    row = (await session.execute(select(ShunyaJob).where(match).limit(1))).scalar_one_or_none()
    if row is None:
        return ApplyOutcome.unknown_job
    if not ctx.settings.weakened("job-lock"):
        await uow.after.enter_async_context(ctx.locks.hold(f"shunya_job:{job.shunya_job_id}", kind="shunya_job"))
        await session.refresh(row)
    if row.processed_output_hash is not None or row.status == "failed":
        _count_duplicate(ctx, source)
        # Weakened ``duplicate-answered-applied``: a delivery of a job already taken in is answered as if it
        # had applied it (Shunya, or a replaying client, is told the result was applied again).
        return ApplyOutcome.applied if ctx.settings.weakened("duplicate-answered-applied") else ApplyOutcome.duplicate
    await ctx.race_window(f"apply:{job.shunya_job_id}")
    guarded = not ctx.settings.weakened("job-db-guard")
    marker = job.output_hash if job.status == "completed" else f"failed:{job.shunya_job_id}"
    stmt = update(ShunyaJob).where(ShunyaJob.id == row.id)
    if guarded:
        stmt = stmt.where(ShunyaJob.processed_output_hash.is_(None))
    marked = await session.execute(
        stmt.values(
            processed_output_hash=marker,
            processed_at=utcnow(),
            status=job.status,
            error=job.error,
        )
    )
    if marked.rowcount == 0:
        METRICS.guard_rejections.labels("shunya_jobs.processed_output_hash").inc()
        _count_duplicate(ctx, source)
        return ApplyOutcome.duplicate
    if job.status != "completed":
        if not ctx.settings.weakened("shunya-failure-metrics"):
            METRICS.shunya_job_failures.labels("job_failed").inc()
        if not ctx.settings.weakened("failed-job-analysed"):
            if not ctx.settings.weakened("failed-call-status"):
                await session.execute(update(Call).where(Call.id == row.call_id).values(status="analysis_failed"))
            return ApplyOutcome.failed_recorded
        # Weakened ``failed-job-analysed``: the failure counted, then taken for an empty result and applied.
    result = job.result or {}
    analysis = CallAnalysis(
        id=uuid.uuid4(),
        company_id=row.company_id,
        call_id=row.call_id,
        shunya_job_id=job.shunya_job_id,
        output_hash=str(job.output_hash),
        result=result,
        applied_by=source,
        created_at=utcnow(),
    )
    try:
        async with session.begin_nested():
            session.add(analysis)
    except IntegrityError as exc:
        if ANALYSIS_INDEX not in str(exc.orig):
            raise
        METRICS.guard_rejections.labels(ANALYSIS_INDEX).inc()
        _count_duplicate(ctx, source)
        return ApplyOutcome.duplicate
    # Weakened ``lead-score-field``: the field's older name, so the copy is always None.
    lead_score = result.get("score" if ctx.settings.weakened("lead-score-field") else "lead_score")
    await session.execute(
        update(Call)
        .where(Call.id == row.call_id)
        .values(
            status="analyzed",
            lead_score=lead_score if isinstance(lead_score, int) else None,
            outcome=str(result.get("outcome"))[:20] if result.get("outcome") is not None else None,
        )
    )
    METRICS.webhook_dedupe_misses.labels(source).inc()
    return ApplyOutcome.applied
