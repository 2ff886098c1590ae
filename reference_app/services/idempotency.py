"""Idempotency-Key for write endpoints, after the IETF httpapi Idempotency-Key draft.

Protocol, per (tenant, key):

* no stored key: the request *claims* it (a row ``in_flight`` with a lease,
  committed at once so that retries see it), runs, and stores its response in
  the same transaction as its side effects, so that a stored response always
  means the effect happened and vice versa;
* same key and payload, completed: the stored status and body are replayed byte
  for byte, with ``Idempotent-Replayed: true``;
* same key, other payload (or other endpoint): 422;
* same key while the first request still runs: 409; if the first request died
  and its lease (``STORMPROOF_IDEMPOTENCY_LEASE_SECONDS``, default 30) ran out,
  the retry takes the claim over;
* a key older than ``STORMPROOF_IDEMPOTENCY_TTL_SECONDS`` (default 86,400) is
  expired: it is forgotten and the request runs as new;
* no key where the endpoint requires one: 400.

Definite 4xx outcomes (404, 409 conflicts) are stored and replayed like
successes; a 5xx or a crash releases the claim so the client may retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from ..auth import Principal
from ..context import AppContext
from ..models import IdempotencyKey
from ..models.base import utcnow
from ..obs.metrics import METRICS
from ..problems import PROBLEM_JSON, Problem
from .unit_of_work import UnitOfWork, run_in_transaction

__all__ = ["UnitOfWork", "Outcome", "run_write", "fingerprint", "HEADER", "REPLAY_HEADER"]

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    payload: Any


Operation = Callable[[UnitOfWork], Awaitable[Outcome]]


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Hash of what makes two requests "the same": endpoint and canonical JSON body."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(part)
        digest.update(b"\x00")
    return digest.hexdigest()


async def _run(ctx: AppContext, operation: Operation) -> Outcome:
    return await run_in_transaction(ctx.sessions, operation)


def _response(status: int, body: bytes, content_type: str, *, replayed: bool = False) -> Response:
    headers = {REPLAY_HEADER: "true"} if replayed else None
    return Response(content=body, status_code=status, media_type=content_type, headers=headers)


async def run_write(
    request: Request,
    ctx: AppContext,
    principal: Principal,
    operation: Operation,
    *,
    required: bool,
) -> Response:
    """Run a write endpoint's ``operation`` under the Idempotency-Key protocol."""
    key = request.headers.get(HEADER)
    if ctx.settings.weakened("idempotency-key-required"):
        required = False  # the original: a key was honoured when sent, never demanded
    if ctx.settings.weakened("idempotency-keys") or (key is None and not required):
        outcome = await _run(ctx, operation)
        return _response(outcome.status, _encode(outcome.payload), "application/json")
    if key is None:
        METRICS.idempotency.labels("missing").inc()
        raise Problem("idempotency-key-missing", f"this endpoint requires an {HEADER} header")
    if not _KEY_RE.match(key) and not ctx.settings.weakened("idempotency-key-format"):
        raise Problem("idempotency-key-invalid", "1 to 255 printable ASCII characters, no spaces")

    fp = fingerprint(request.method, request.url.path, await request.body())
    if ctx.settings.weakened("idempotency-tenant-scope"):
        principal = await _key_owner(ctx, principal, key)
    replay = await _claim(ctx, principal, key, fp, request)
    if replay is not None:
        return replay
    try:
        outcome = await _run_and_store(ctx, principal, key, operation)
    except Problem as problem:
        if problem.status >= 500:
            await _release(ctx, principal, key)
            raise
        await _store(ctx, principal, key, problem.status, problem.body(), PROBLEM_JSON)
        return problem.response()
    except BaseException:
        await asyncio.shield(_release(ctx, principal, key))
        raise
    return _response(outcome.status, _encode(outcome.payload), "application/json")


async def _claim(
    ctx: AppContext, principal: Principal, key: str, fp: str, request: Request
) -> Response | None:
    """Claim the key for this request, or answer from what is stored."""
    now = utcnow()
    settings = ctx.settings
    claim = {
        "fingerprint": fp,
        "method": request.method,
        "path": request.url.path,
        "state": "in_flight",
        "lease_expires_at": now + timedelta(seconds=settings.idempotency_lease_seconds),
        "expires_at": now + timedelta(seconds=settings.idempotency_ttl_seconds),
        "response_status": None,
        "response_content_type": None,
        "response_body": None,
        "created_at": now,
    }
    async with ctx.sessions() as session, session.begin():
        inserted = await session.execute(
            insert(IdempotencyKey)
            .values(company_id=principal.company_id, key=key, **claim)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if inserted.first() is not None:
            METRICS.idempotency.labels("new").inc()
            return None
        row = (
            await session.execute(
                select(IdempotencyKey)
                .where(IdempotencyKey.company_id == principal.company_id, IdempotencyKey.key == key)
                .with_for_update()
            )
        ).scalar_one()
        if row.expires_at <= now and not settings.weakened("idempotency-expiry"):
            METRICS.idempotency.labels("expired").inc()
            await _overwrite(session, principal, key, claim)
            return None
        if row.fingerprint != fp and not settings.weakened("idempotency-fingerprint"):
            METRICS.idempotency.labels("mismatch").inc()
            raise Problem(
                "idempotency-key-mismatch",
                f"this {HEADER} was first used for {row.method} {row.path} with another payload",
            )
        if row.state == "in_flight":
            if row.lease_expires_at > now and not settings.weakened("idempotency-in-flight"):
                METRICS.idempotency.labels("in_flight").inc()
                raise Problem(
                    "idempotency-key-in-flight",
                    "the first request with this key has not finished; retry later",
                    headers={"Retry-After": "1"},
                )
            METRICS.idempotency.labels("new").inc()
            await _overwrite(session, principal, key, claim)
            return None
        METRICS.idempotency.labels("replay").inc()
        assert row.response_status is not None and row.response_body is not None
        return _response(
            row.response_status,
            row.response_body,
            row.response_content_type or "application/json",
            replayed=True,
        )


async def _key_owner(ctx: AppContext, principal: Principal, key: str) -> Principal:
    """Weakened ``idempotency-tenant-scope``: the key store as one global namespace.

    The original looked a key up by its text alone: a key another tenant used
    first is that tenant's, and its stored answer is what this caller gets.
    """
    async with ctx.sessions() as session:
        owner = (
            await session.execute(select(IdempotencyKey.company_id).where(IdempotencyKey.key == key).limit(1))
        ).scalar_one_or_none()
    return principal if owner is None else replace(principal, company_id=owner)


async def _overwrite(session: AsyncSession, principal: Principal, key: str, claim: dict[str, Any]) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.company_id == principal.company_id, IdempotencyKey.key == key)
        .values(**claim)
    )


def _completion(principal: Principal, key: str, status: int, body: bytes, content_type: str) -> Any:
    return (
        update(IdempotencyKey)
        .where(
            IdempotencyKey.company_id == principal.company_id,
            IdempotencyKey.key == key,
            IdempotencyKey.state == "in_flight",
        )
        .values(
            state="completed",
            response_status=status,
            response_body=body,
            response_content_type=content_type,
        )
    )


async def _run_and_store(ctx: AppContext, principal: Principal, key: str, operation: Operation) -> Outcome:
    async def with_store(uow: UnitOfWork) -> Outcome:
        outcome = await operation(uow)
        await uow.session.execute(
            _completion(principal, key, outcome.status, _encode(outcome.payload), "application/json")
        )
        return outcome

    return await _run(ctx, with_store)


async def _store(ctx: AppContext, principal: Principal, key: str, status: int, body: bytes, content_type: str) -> None:
    async with ctx.sessions() as session, session.begin():
        await session.execute(_completion(principal, key, status, body, content_type))


async def _release(ctx: AppContext, principal: Principal, key: str) -> None:
    async with ctx.sessions() as session, session.begin():
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.company_id == principal.company_id,
                IdempotencyKey.key == key,
                IdempotencyKey.state == "in_flight",
            )
        )
