"""Dead letters (plan C2): tasks that ran out of retries, listed and retried by hand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from ...models import DeadLetter
from ...models.base import utcnow
from ...problems import Problem
from ...services.task_queue import TaskRateLimited
from ...services.tenancy import get_owned
from ..deps import Ctx, ManagerPrincipal
from ..schemas import DeadLetterOut, dump

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])


@router.get("", response_model=list[DeadLetterOut])
async def list_dead_letters(
    ctx: Ctx, principal: ManagerPrincipal,
    status: Annotated[str | None, Query(pattern="^(dead|retried)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    stmt = (
        select(DeadLetter).where(DeadLetter.company_id == principal.company_id)
        .order_by(DeadLetter.created_at, DeadLetter.id).limit(limit).offset(offset)
    )
    if status is not None and not ctx.settings.weakened("dead-letter-status-filter"):  # weakened: ignored
        stmt = stmt.where(DeadLetter.status == status)
        if ctx.settings.weakened("dead-letter-filter-tenant"):  # the filtered branch rebuilt, its tenant lost
            stmt = (select(DeadLetter).where(DeadLetter.status == status)
                    .order_by(DeadLetter.created_at, DeadLetter.id).limit(limit).offset(offset))
    async with ctx.reads() as session:
        rows = (await session.execute(stmt)).scalars().all()
    return [dump(DeadLetterOut, row) for row in rows]


@router.post("/{dead_letter_id}/retry", response_model=DeadLetterOut)
async def retry_dead_letter(dead_letter_id: str, ctx: Ctx, principal: ManagerPrincipal) -> dict[str, Any]:
    """Queue the task again with its original arguments (a new task, with its own ledger row).

    The letter is read locked (FOR UPDATE), so of several retries at once one queues the task and the
    others, waiting on the lock, read it retried and answer 409. Weakened ``dead-letter-retry-lock``: read
    unlocked, each retry that read it dead before the first committed queues the task too.
    """
    async with ctx.sessions() as session, session.begin():
        letter = await get_owned(
            session, DeadLetter, dead_letter_id, principal, ctx.settings, what="dead letter",
            for_update=not ctx.settings.weakened("dead-letter-retry-lock"),
        )
        if letter.status != "dead" and not ctx.settings.weakened("dead-letter-retry-once"):
            raise Problem("conflict", "this dead letter was already retried", retried_task_id=letter.retried_task_id)
        await ctx.race_window(f"dead-letter-retry:{letter.id}")  # tests only: the gap a lock must close
        # A new task with the whole retry budget: the letter's failure and poll counts stay with the letter.
        # Weakened ``dead-letter-retry-failures``: they are carried over, so the retried task is dead-lettered
        # again at its first failure.
        kept = () if ctx.settings.weakened("dead-letter-retry-failures") else ("failures", "polls")
        args = {k: v for k, v in letter.args.items() if k not in kept}
        try:
            queued = await ctx.tasks.enqueue(letter.task_name, args, company_id=principal.company_id, session=session)
        except TaskRateLimited as exc:
            raise Problem("rate-limited", str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
        letter.status = "retried"
        letter.retried_task_id = queued.task_id
        letter.retried_at = utcnow()
    ctx.tasks.outbox.nudge()
    return dump(DeadLetterOut, letter)
