"""Reps: the users of a tenant with the ``rep`` role."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from ...models import User
from ...problems import Problem
from ...services.idempotency import Outcome, UnitOfWork, run_write
from ...services.tenancy import get_owned
from ..deps import Ctx, CurrentPrincipal, ManagerPrincipal
from ..schemas import RepCreate, RepOut, dump

router = APIRouter(prefix="/api/v1/reps", tags=["reps"])


@router.get("", response_model=list[RepOut])
async def list_reps(
    ctx: Ctx, principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    stmt = (
        select(User)
        .where(User.company_id == principal.company_id, User.role == "rep")
        .order_by(User.email)
        .limit(limit)
        .offset(offset)
    )
    async with ctx.reads() as session:
        rows = (await session.execute(stmt)).scalars().all()
    return [dump(RepOut, row) for row in rows]


@router.post("", status_code=201, response_model=RepOut)
async def create_rep(request: Request, body: RepCreate, ctx: Ctx, principal: ManagerPrincipal) -> Response:
    async def op(uow: UnitOfWork) -> Outcome:
        rep = User(
            id=uuid.uuid4(), company_id=principal.company_id, email=body.email, name=body.name, role="rep"
        )
        try:
            async with uow.session.begin_nested():
                uow.session.add(rep)
        except IntegrityError:
            raise Problem("conflict", "a user with this email exists in your company") from None
        return Outcome(201, dump(RepOut, rep))

    return await run_write(request, ctx, principal, op, required=False)


@router.get("/{rep_id}", response_model=RepOut)
async def get_rep(rep_id: str, ctx: Ctx, principal: CurrentPrincipal) -> dict[str, Any]:
    async with ctx.reads() as session:
        user = await get_owned(session, User, rep_id, principal, ctx.settings, what="rep")
    if user.role != "rep":
        raise Problem("not-found", "rep not found")
    return dump(RepOut, user)
