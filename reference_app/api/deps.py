"""Dependencies shared by the routes, as ``Annotated`` aliases that keep signatures short.

Every dependency is ``async def``, even where it awaits nothing: FastAPI runs a
plain ``def`` dependency in the thread pool, a hand-off to a worker thread and
back (and a wait for a free thread under load) on every request for a few
attribute reads.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from ..auth import Principal, decode_token
from ..context import AppContext
from ..problems import Problem

__all__ = ["Ctx", "CurrentPrincipal", "ManagerPrincipal"]


async def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def get_principal(request: Request, ctx: Ctx) -> Principal:
    """The caller, from the bearer token; also where the tenant's API rate limit applies (C3)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            "unauthenticated",
            "send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = decode_token(ctx.settings, token.strip())
    override = request.headers.get("X-Company-Id")
    if not (override and ctx.settings.weakened("tenant-from-header")):
        # Weakened ``tenant-from-query``: support's "act as" parameter, left in the API.
        override = request.query_params.get("company_id") if ctx.settings.weakened("tenant-from-query") else None
    if override:
        try:
            principal = Principal(uuid.UUID(override), principal.user_id, principal.role)
        except ValueError:
            pass
    # The tenant's allowance, whoever of its users sends (weakened: one allowance per user).
    limited = principal.user_id if ctx.settings.weakened("rate-limit-per-user") else principal.company_id
    decision = await ctx.limiter.check(ctx.api_limit, limited)
    if not decision.allowed:
        # Weakened ``retry-after-units``: the wait in milliseconds where the header means seconds.
        wait = decision.retry_after_s * (1000 if ctx.settings.weakened("retry-after-units") else 1)
        raise Problem(
            "rate-limited",
            "your company's request rate is over its limit",
            headers={"Retry-After": str(wait)},
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_manager(principal: CurrentPrincipal, ctx: Ctx) -> Principal:
    # Weakened ``manager-role``: the role is not checked, every user of the tenant is a manager here.
    if not principal.is_manager and not ctx.settings.weakened("manager-role"):
        raise Problem("forbidden", "this action needs the manager role")
    return principal


ManagerPrincipal = Annotated[Principal, Depends(require_manager)]
