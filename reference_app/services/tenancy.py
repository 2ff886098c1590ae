"""Tenant ownership of ids (plan D2): another tenant's id is exactly a missing id.

Every route that takes an id loads it through :func:`get_owned`, so a probe of
another tenant's id answers the same 404 body as an id that never existed and
ids cannot be enumerated. The ``tenant-guard`` weakening drops the tenant
filter here, which is the original bug; ``tenant-404`` keeps the refusal but
answers 403, which tells the caller the id exists in another tenant.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth import Principal
from ..problems import Problem
from ..settings import Settings

__all__ = ["get_owned", "parse_id"]

T = TypeVar("T")


def parse_id(raw: str | uuid.UUID, what: str) -> uuid.UUID:
    """A malformed id is simply not found: the same answer as for any unknown id."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise Problem("not-found", f"{what} not found") from None


#: The statements of :func:`get_owned`, one per (model, tenant-scoped, for update), built once: a
#: statement built per request paid its construction and its cache-key walk on every call (issue 17).
_OWNED: dict[tuple[type[Any], bool, bool], Any] = {}


def _owned_statement(model: type[Any], scoped: bool, for_update: bool) -> Any:
    key = (model, scoped, for_update)
    stmt = _OWNED.get(key)
    if stmt is None:
        stmt = select(model).where(model.id == bindparam("id"))
        if scoped:
            stmt = stmt.where(model.company_id == bindparam("company_id"))
        if for_update:
            stmt = stmt.with_for_update()
        stmt = _OWNED.setdefault(key, stmt)
    return stmt


async def get_owned(
    session: AsyncSession,
    model: type[T],
    raw_id: str | uuid.UUID,
    principal: Principal,
    settings: Settings,
    *,
    what: str,
    for_update: bool = False,
) -> T:
    # Weakened ``id-parse-unguarded``: parsed as if every id were well formed (a ValueError, answered 500).
    ident = uuid.UUID(str(raw_id)) if settings.weakened("id-parse-unguarded") else parse_id(raw_id, what)
    forbid = settings.weakened("tenant-404") and not settings.weakened("tenant-guard")
    scoped = not settings.weakened("tenant-guard") and not forbid and not (
        settings.weakened("tenant-guard-reps") and not principal.is_manager)
    params = {"id": ident, "company_id": principal.company_id} if scoped else {"id": ident}
    found = (await session.execute(_owned_statement(model, scoped, for_update), params)).scalar_one_or_none()
    if found is None:
        raise Problem("not-found", f"{what} not found")
    if forbid and found.company_id != principal.company_id:  # type: ignore[attr-defined]
        # Weakened ``tenant-404``: the original's 403 tells the caller the id exists elsewhere.
        raise Problem("forbidden", f"this {what} belongs to another company")
    return found
