"""Idempotency-Key for write endpoints, after the IETF httpapi Idempotency-Key draft.

Protocol, per (tenant, key), all of it in the write's own transaction:

* the request first takes a transaction-scoped PostgreSQL advisory lock on
  (tenant, key) without waiting; if another request holds it, that request is
  still running: 409 ``idempotency-key-in-flight`` (``Retry-After: 1``);
* holding the lock, it reads the stored key:
  same key and payload, completed: the stored status and body are replayed
  byte for byte, with ``Idempotent-Replayed: true``; same key, other payload
  (or other endpoint): 422; a key older than ``STORMPROOF_IDEMPOTENCY_TTL_SECONDS``
  (default 86,400) is expired: forgotten, and the request runs as new;
* a new key: the operation runs and its response is stored in the same
  transaction as its side effects, so a stored response always means the effect
  happened and vice versa;
* no key where the endpoint requires one: 400.

Definite 4xx outcomes (404, 409 conflicts) are stored and replayed like
successes; a 5xx or a crash rolls the transaction back, which stores nothing
and frees the lock, so the client may retry at once. The refusals that say
"retry" store nothing either: a rate limit's 429 and a busy resource's 409
``resource-busy`` (a lock held past the wait) ran no write.

Why one transaction: the former protocol committed an ``in_flight`` claim row
first, then ran the write in a second transaction and released the claim in a
third on failure: two more transactions (a pool checkout, BEGIN and COMMIT
each) on every keyed write, and a crashed request's claim blocked retries for a
lease. The advisory lock is what the claim row was for (a retry sees the first
request in flight) and dies with the first request's transaction or
connection, so no lease is needed.

Round trips of a keyed write (issue 17): BEGIN, the claim (lock and lookup in
one statement), the write's own statements, the upsert of the stored response,
COMMIT. The upsert stays a statement of its own, after the operation: its row
holds the operation's answer, known only once the operation has run, and it
shares the operation's transaction, so one COMMIT makes both durable. The lock
and the lookup were two statements: a lookup in the lock's statement reads a
snapshot taken before the lock, and could miss a response that the previous
holder committed in between. They are one round trip now through the
``idempotency_claim()`` function (migration 0006): a VOLATILE PL/pgSQL function
takes a new snapshot for each query it runs, so its lookup, after the lock,
sees what the previous holder committed. ``in_flight`` rows with a lease are
still honoured when found (a process of the former protocol wrote them).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from ..auth import Principal
from ..context import AppContext
from ..models import IdempotencyKey
from ..models.base import utcnow
from ..obs.metrics import METRICS
from ..problems import PROBLEM_JSON, Problem
from .unit_of_work import UnitOfWork, run_in_transaction, wrote_in_transaction

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


def _response(status: int, body: bytes, content_type: str, *, replayed: bool = False) -> Response:
    headers = {REPLAY_HEADER: "true"} if replayed else None
    return Response(content=body, status_code=status, media_type=content_type, headers=headers)


def _in_flight() -> Problem:
    return Problem(
        "idempotency-key-in-flight",
        "the first request with this key has not finished; retry later",
        headers={"Retry-After": "1"},
    )


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
        outcome = await run_in_transaction(ctx.sessions, operation)
        return _response(outcome.status, _encode(outcome.payload), "application/json")
    if key is None:
        METRICS.idempotency.labels("missing").inc()
        raise Problem("idempotency-key-missing", f"this endpoint requires an {HEADER} header")
    if not _KEY_RE.match(key) and not ctx.settings.weakened("idempotency-key-format"):
        raise Problem("idempotency-key-invalid", "1 to 255 printable ASCII characters, no spaces")

    write = _KeyedWrite(ctx, principal, key, request.method, request.url.path,
                        fingerprint(request.method, request.url.path, await request.body()))
    try:  # one transaction, run again if PostgreSQL chose it as a deadlock's victim
        return await run_in_transaction(ctx.sessions, lambda uow: _write_once(ctx, write, uow.session, uow, operation))
    except _RolledBack as rolled:
        return await _store_refusal(ctx, write, rolled.problem)
    except Exception as exc:
        if not ctx.settings.weakened("idempotency-store-errors") or (isinstance(exc, Problem) and exc.status < 500):
            raise
        # Weakened: the key store keeps whatever was answered, as a response-caching middleware does; the
        # error is stored in a transaction of its own (when the database takes it) and replayed from then on.
        error = exc if isinstance(exc, Problem) else Problem("internal-error", "an unexpected error occurred")
        try:
            return await _store_refusal(ctx, write, error)
        except Exception:
            raise exc from None


class _RolledBack(Exception):
    """A definite 4xx from a write that had written: roll it back, then store the refusal."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.kind.slug)
        self.problem = problem


async def _write_once(
    ctx: AppContext, write: "_KeyedWrite", session: AsyncSession, uow: UnitOfWork, operation: Operation
) -> Response:
    """Claim, run and store in the one transaction ``session`` is in; a raise rolls it all back."""
    if ctx.settings.weakened("idempotency-tenant-scope"):
        write.principal = await _key_owner(session, write.principal, write.key)
    replay = await write.claim(session)
    if replay is not None:
        if ctx.settings.weakened("replay-rerender"):
            return await _rerendered(session, replay, write.path)
        return replay
    try:
        outcome = await operation(uow)
    except Problem as problem:
        if problem.status >= 500:
            raise  # rolled back: nothing stored, the key is free for a retry
        if problem.status == 429 and not ctx.settings.weakened("rate-limit-not-stored"):
            # A limit's refusal ran nothing and says "again after Retry-After": stored, the key would answer
            # 429 to that retry for its whole lifetime (and without the header, which a stored answer lacks).
            raise
        if problem.kind.slug == "resource-busy" and not ctx.settings.weakened("busy-stored"):
            # A busy resource's "retry" is no outcome either: the write did not run. Stored, the key answered it
            # to every retry for 24 h (found 2026-12-06 by reading: every keyed refusal below 500 was stored).
            raise
        if await wrote_in_transaction(session):
            raise _RolledBack(problem) from None  # its writes must go before its refusal is stored
        session.expunge_all()  # nothing was flushed; drop what was added but not flushed
        stored = await write.store(session, problem.status, problem.body(), PROBLEM_JSON)
    else:
        stored = await write.store(session, outcome.status, _encode(outcome.payload), "application/json")
    if stored is None:
        # A live answer appeared under the key while we held its lock: only a process of the former
        # protocol (claim rows, no lock) can do that. Roll back; the retry will replay that answer.
        METRICS.idempotency.labels("in_flight").inc()
        raise _in_flight()
    return stored


async def _rerendered(session: AsyncSession, replay: Response, path: str) -> Response:
    """Weakened ``replay-rerender``: a store that kept the answer's id and re-reads the row on a replay, so
    a session stopped since its start replays as stopped (the client is told something it never was)."""
    try:
        data = json.loads(replay.body)
    except ValueError:
        return replay
    if replay.status_code >= 300 or "/recordings/" not in path or not isinstance(data, dict) or "id" not in data:
        return replay
    current = (await session.execute(text("SELECT status FROM recording_sessions WHERE id = CAST(:id AS uuid)"),
                                     {"id": str(data["id"])})).scalar_one_or_none()
    if current is None or current == data.get("status"):
        return replay
    data["status"] = current
    return _response(replay.status_code, _encode(data), "application/json", replayed=True)


@dataclass(slots=True)
class _KeyedWrite:
    ctx: AppContext
    principal: Principal
    key: str
    method: str
    path: str
    fp: str

    def _lock_name(self) -> str:
        return f"idempotency:{self.principal.company_id}:{self.key}"

    async def claim(self, session: AsyncSession) -> Response | None:
        """Take the key's lock and read it: None to run the write, or the stored answer to replay."""
        settings = self.ctx.settings
        params = {"company_id": self.principal.company_id, "key": self.key, "name": self._lock_name(),
                  "take_lock": not settings.weakened("idempotency-in-flight")}
        row = (await session.execute(_CLAIM, params)).one()
        if not row.locked:
            METRICS.idempotency.labels("in_flight").inc()
            raise _in_flight()
        return self.answer(row if row.found else None, utcnow())

    def answer(self, row: Any, now: Any) -> Response | None:
        """What a stored row means for this request (raising 422 or 409), or None: run as new."""
        settings = self.ctx.settings
        if row is None:
            METRICS.idempotency.labels("new").inc()
            return None
        if row.expires_at <= now and not settings.weakened("idempotency-expiry"):
            METRICS.idempotency.labels("expired").inc()
            return None
        if row.fingerprint != self.fp and not settings.weakened("idempotency-fingerprint"):
            METRICS.idempotency.labels("mismatch").inc()
            raise Problem(
                "idempotency-key-mismatch",
                f"this {HEADER} was first used for {row.method} {row.path} with another payload",
            )
        if row.state == "in_flight":
            if row.lease_expires_at > now and not settings.weakened("idempotency-in-flight"):
                METRICS.idempotency.labels("in_flight").inc()
                raise _in_flight()
            METRICS.idempotency.labels("new").inc()
            return None
        METRICS.idempotency.labels("new" if settings.weakened("replay-metrics") else "replay").inc()
        assert row.response_status is not None and row.response_body is not None
        return _response(
            row.response_status, row.response_body, row.response_content_type or "application/json", replayed=True
        )

    async def store(self, session: AsyncSession, status: int, body: bytes, content_type: str) -> Response | None:
        """Store the answer under the key and return it; None when a live answer is stored already.

        A row that is expired or a claim of the former protocol is overwritten. With the
        ``idempotency-in-flight`` weakening a second request ran beside the first (no lock): it
        keeps its effects and its own answer, and the first answer stays stored, like the original.
        """
        now = utcnow()
        settings = self.ctx.settings
        params = {
            "company_id": self.principal.company_id, "key": self.key, "fingerprint": self.fp,
            "method": self.method, "path": self.path, "now": now,
            "expires_at": now + timedelta(seconds=settings.idempotency_ttl_seconds),
            "status": status, "content_type": content_type, "body": body,
        }
        stored = (await session.execute(_STORE, params)).first() is not None
        if not stored and not settings.weakened("idempotency-in-flight"):
            return None
        return _response(status, body, content_type)


# The key's three statements, built once (issue 17). A statement built per request cost its
# construction, then a walk of the whole tree for its cache key and, for ORM-entity columns, the
# ORM's compile state: about as much CPU as the round trip itself. Plain SQL with bind parameters
# has a cache key of its text, and its rows need no type processing (psycopg hands back datetimes
# and bytes). The column names below are the model's (:class:`~..models.IdempotencyKey`).

#: The claim, one round trip: the key's transaction-scoped lock without waiting (``locked`` false
#: when another request holds it), then the stored key read with a snapshot taken after the lock
#: (migration 0006's ``idempotency_claim``, a VOLATILE function: a fresh snapshot per query).
_CLAIM = text(
    "SELECT locked, found, fingerprint, method, path, state, lease_expires_at, expires_at, response_status,"
    " response_content_type, response_body FROM idempotency_claim(:company_id, :key, :name, :take_lock)"
)
#: The same lock, waiting for it (a refusal stored after its write's rollback).
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")
#: The columns a claim reads (no ORM object: nothing to track for a row that is only read).
_LOOKUP = text(
    "SELECT fingerprint, method, path, state, lease_expires_at, expires_at, response_status,"
    " response_content_type, response_body FROM idempotency_keys WHERE company_id = :company_id AND key = :key"
)
#: Store the answer: a new row, or over one that is expired or a claim of the former protocol.
#: RETURNING nothing when a live answer is stored already.
_STORE = text(
    "INSERT INTO idempotency_keys (company_id, key, fingerprint, method, path, state, lease_expires_at,"
    " expires_at, response_status, response_content_type, response_body, created_at)"
    " VALUES (:company_id, :key, :fingerprint, :method, :path, 'completed', :now, :expires_at, :status,"
    " :content_type, :body, :now)"
    " ON CONFLICT (company_id, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
    " method = excluded.method, path = excluded.path, state = excluded.state,"
    " lease_expires_at = excluded.lease_expires_at, expires_at = excluded.expires_at,"
    " response_status = excluded.response_status, response_content_type = excluded.response_content_type,"
    " response_body = excluded.response_body, created_at = excluded.created_at"
    " WHERE idempotency_keys.expires_at <= :now OR idempotency_keys.state = 'in_flight'"
    " RETURNING key"
)


async def _store_refusal(ctx: AppContext, write: _KeyedWrite, problem: Problem) -> Response:
    """Store a definite 4xx after its write's transaction was rolled back (it had written before refusing).

    Its own transaction, under the key's lock again (waiting for it this time): if another request
    stored the key in between, that stored answer (or a 422) is this request's answer too.
    """
    async with ctx.sessions() as session, session.begin():
        if not ctx.settings.weakened("idempotency-in-flight"):
            await session.execute(_LOCK, {"name": write._lock_name()})
        stored = await write.store(session, problem.status, problem.body(), PROBLEM_JSON)
        if stored is not None:
            return stored
        row = (await session.execute(_LOOKUP, {"company_id": write.principal.company_id, "key": write.key})).first()
    replay = write.answer(row, utcnow())
    if replay is None:  # cannot happen: store() found a live row; answer as the write did
        return problem.response()
    return replay


async def _key_owner(session: AsyncSession, principal: Principal, key: str) -> Principal:
    """Weakened ``idempotency-tenant-scope``: the key store as one global namespace.

    The original looked a key up by its text alone: a key another tenant used
    first is that tenant's, and its stored answer is what this caller gets.
    """
    owner = (
        await session.execute(select(IdempotencyKey.company_id).where(IdempotencyKey.key == key).limit(1))
    ).scalar_one_or_none()
    return principal if owner is None else replace(principal, company_id=owner)
