"""Retention policy and runs (plan F1), confirmed hard deletions and their audit (plan F2). Managers only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from ...models import DeletionAudit, RetentionPolicy
from ...models.base import utcnow
from ...services.deletion import confirm_request, create_request
from ...services.retention import effective_policy, enforce_retention
from ..deps import Ctx, ManagerPrincipal
from ..schemas import (
    DeletionAuditOut,
    DeletionConfirm,
    DeletionCreate,
    DeletionCreatedOut,
    RetentionPolicyIn,
    RetentionPolicyOut,
    RetentionRunOut,
    created_body,
    dump,
)

router = APIRouter(prefix="/api/v1", tags=["data lifecycle"])


@router.get("/retention-policy", response_model=RetentionPolicyOut)
async def get_retention_policy(ctx: Ctx, principal: ManagerPrincipal) -> dict[str, Any]:
    async with ctx.reads() as session:
        policy = await effective_policy(session, principal.company_id)
    return RetentionPolicyOut(
        company_id=policy.company_id, call_days=policy.call_days,
        appointment_days=policy.appointment_days, default=policy.default,
    ).model_dump(mode="json")


@router.put("/retention-policy", response_model=RetentionPolicyOut)
async def put_retention_policy(body: RetentionPolicyIn, ctx: Ctx, principal: ManagerPrincipal) -> dict[str, Any]:
    async with ctx.sessions() as session, session.begin():
        row = await session.get(RetentionPolicy, principal.company_id, with_for_update=True)
        if row is None:
            row = RetentionPolicy(company_id=principal.company_id, created_at=utcnow())
            session.add(row)
        row.call_days = body.call_days
        # Weakened ``policy-put-fields``: the appointment retention stored from the call retention's field.
        row.appointment_days = body.call_days if ctx.settings.weakened("policy-put-fields") else body.appointment_days
        row.updated_by = principal.user_id
        row.updated_at = utcnow()
    return RetentionPolicyOut(
        company_id=principal.company_id, call_days=body.call_days, appointment_days=body.appointment_days,
        default=False,
    ).model_dump(mode="json")


@router.post("/admin/retention/run", response_model=RetentionRunOut)
async def run_retention(ctx: Ctx, principal: ManagerPrincipal) -> dict[str, Any]:
    """Enforce the caller's company's retention now (what the periodic task does for every company)."""
    counts = await enforce_retention(
        ctx.sessions, principal.company_id, batch_size=ctx.settings.retention_batch_size,
        weakened_defaults=ctx.settings.weakened("retention-defaults"),
        weakened_scope=ctx.settings.weakened("retention-tenant-scope"),
        weakened_audit=ctx.settings.weakened("retention-audit"),
        weakened_from_start=ctx.settings.weakened("retention-from-start"),
        weakened_batch_full=ctx.settings.weakened("retention-batch-full"),
    )
    return {"company_id": str(principal.company_id), "counts": counts.as_dict()}


@router.post("/deletions", status_code=201, response_model=DeletionCreatedOut)
async def create_deletion(body: DeletionCreate, ctx: Ctx, principal: ManagerPrincipal) -> dict[str, Any]:
    """Ask for a deletion: nothing is deleted yet; the answer counts what would be, and gives the token."""
    async with ctx.sessions() as session, session.begin():
        created = await create_request(session, ctx.settings, principal, body.scope, body.target_id)
    return created_body(created)


@router.post("/deletions/{deletion_id}/confirm", response_model=DeletionAuditOut)
async def confirm_deletion(
    deletion_id: str, body: DeletionConfirm, ctx: Ctx, principal: ManagerPrincipal
) -> dict[str, Any]:
    """Delete, in one transaction with the audit row; a second confirmation is 409 deletion-not-pending."""
    async with ctx.sessions() as session, session.begin():
        audit = await confirm_request(session, ctx.settings, principal, deletion_id, body.confirmation_token,
                                      race_window=ctx.race_window)
    return dump(DeletionAuditOut, audit)


@router.get("/deletions", response_model=list[DeletionAuditOut])
async def list_deletions(
    ctx: Ctx, principal: ManagerPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """The audit: every executed deletion of the caller's company, oldest first."""
    async with ctx.reads() as session:
        rows = (
            await session.execute(
                select(DeletionAudit)
                .where(DeletionAudit.company_id == principal.company_id)
                .order_by(DeletionAudit.executed_at, DeletionAudit.id)
                .limit(limit)
                .offset(offset)
            )
        ).scalars().all()
    return [dump(DeletionAuditOut, row) for row in rows]
