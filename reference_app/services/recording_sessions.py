"""Starting and stopping recording sessions (plan A2): one active session per appointment.

Three layers, each switchable off by name: the Redis lock
``recording_session:start:{appointment_id}`` (``session-lock``), the check for
an active session, and the partial unique index on active sessions
(``session-unique-index``), which has the last word when the lock was lost.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from psycopg.errors import ForeignKeyViolation
from sqlalchemy import bindparam, event, select, text, update
from sqlalchemy.exc import IntegrityError

from ..auth import Principal
from ..context import AppContext
from ..models import ACTIVE_SESSION_STATUSES, Appointment, RecordingSession
from ..models.base import utcnow
from ..obs.metrics import METRICS
from ..problems import Problem
from .consent import require_consent
from .idempotency import UnitOfWork
from .unit_of_work import run_in_transaction
from .tenancy import get_owned, parse_id

__all__ = ["start_session", "stop_session", "ACTIVE_INDEX"]

#: Weakened ``start-skip-locked``: the appointment, locked unless another transaction holds it.
_SKIP_LOCKED_APPOINTMENT = (
    select(Appointment)
    .where(Appointment.id == bindparam("id"), Appointment.company_id == bindparam("company_id"))
    .with_for_update(skip_locked=True)
)

ACTIVE_INDEX = "idx_recording_sessions_active_appointment"


#: Built once (issue 17): a statement built per call paid its construction and cache-key walk each time.
_ACTIVE = (
    select(RecordingSession)
    .where(
        RecordingSession.appointment_id == bindparam("appointment_id"),
        RecordingSession.company_id == bindparam("company_id"),
        RecordingSession.status.in_(ACTIVE_SESSION_STATUSES),
    )
    .order_by(RecordingSession.created_at)
    .limit(1)
)


async def _active_session(uow: UnitOfWork, appointment: Appointment) -> RecordingSession | None:
    params = {"appointment_id": appointment.id, "company_id": appointment.company_id}
    return (await uow.session.execute(_ACTIVE, params)).scalar_one_or_none()


async def _oldest_session(uow: UnitOfWork, appointment: Appointment) -> RecordingSession | None:
    """The weakened ``conflict-names-active`` lookup: the status filter forgotten, so the oldest session wins."""
    stmt = (
        select(RecordingSession)
        .where(RecordingSession.appointment_id == appointment.id,
               RecordingSession.company_id == appointment.company_id)
        .order_by(RecordingSession.created_at)
        .limit(1)
    )
    return (await uow.session.execute(stmt)).scalar_one_or_none()


def _conflict(existing: RecordingSession | None) -> Problem:
    return Problem(
        "active-session-exists",
        "the appointment already has an active recording session; stop it first",
        active_session_id=str(existing.id) if existing else None,
    )


async def start_session(
    ctx: AppContext, uow: UnitOfWork, principal: Principal, appointment_id: str | uuid.UUID, *, source: str
) -> RecordingSession:
    if ctx.settings.weakened("start-skip-locked"):
        # Weakened ``start-skip-locked``: the start serialises on the appointment's row with FOR UPDATE SKIP
        # LOCKED (a job queue's habit): a start that meets another start's lock finds no appointment, 404.
        params = {"id": parse_id(appointment_id, "appointment"), "company_id": principal.company_id}
        appointment = (await uow.session.execute(_SKIP_LOCKED_APPOINTMENT, params)).scalar_one_or_none()
        if appointment is None:
            raise Problem("not-found", "appointment not found")
    else:
        appointment = await get_owned(
            uow.session, Appointment, appointment_id, principal, ctx.settings, what="appointment"
        )
    if not (source == "legacy" and ctx.settings.weakened("legacy-consent-check")):
        await require_consent(uow.session, ctx.settings, appointment, "recording")
    unlocked = ctx.settings.weakened("session-lock") or (source == "legacy" and ctx.settings.weakened(
        "legacy-start-lock"))
    if not unlocked:
        await uow.after.enter_async_context(
            ctx.locks.hold(f"recording_session:start:{appointment.id}", kind="session_start")
        )
    if ctx.settings.weakened("session-metrics"):  # counted when asked for, not when created
        METRICS.sessions_started.labels(source).inc()
    existing = await _active_session(uow, appointment)
    if existing is not None and ctx.settings.weakened("start-answers-active"):
        return existing  # an "idempotent" start without a key: the active session answered as if started here
    if existing is not None:
        if ctx.settings.weakened("conflict-names-active"):
            # The original looked the session up again for the answer, without the status filter.
            raise _conflict(await _oldest_session(uow, appointment))
        if ctx.settings.weakened("conflict-names-own-id"):
            # The session this start would have created, named instead of the one that blocks it.
            raise _conflict(RecordingSession(id=uuid.uuid4()))
        raise _conflict(existing)
    await ctx.race_window(f"session-start:{appointment.id}")
    recording = await _insert_session(ctx, uow, principal, appointment, source)
    if not ctx.settings.weakened("session-metrics"):
        # Counted when the transaction commits: a start whose commit failed (a database fault: 5xx) made no
        # session (metrics-agree compares the count with the rows; db-latency found the +1, 2026-12-05).
        event.listen(uow.session.sync_session, "after_commit",
                     lambda _: METRICS.sessions_started.labels(source).inc(), once=True)
    return recording


#: The active session's insert, refused by the partial unique index without an error: ``ON CONFLICT
#: DO NOTHING`` on that index (``RETURNING`` nothing). It was an ORM add in a savepoint, whose
#: violation rolled the savepoint back: SAVEPOINT and RELEASE were two more round trips on every
#: start, and the flush's unit of work more CPU than the statement (issue 17). A conflicting start
#: still in flight is waited for, as for the violation; any other error (the appointment's foreign
#: key) aborts the transaction, and the keyed write rolls back before storing its 404.
_INSERT_ACTIVE = text(
    "INSERT INTO recording_sessions (id, company_id, appointment_id, started_by, status, source, created_at)"
    " VALUES (:id, :company_id, :appointment_id, :started_by, 'recording', :source, :created_at)"
    f" ON CONFLICT (appointment_id, company_id) WHERE status IN {ACTIVE_SESSION_STATUSES!r} DO NOTHING"
    " RETURNING id"
)
#: Under the weakening ``session-unique-index`` the index is dropped: nothing to name, a plain insert.
_INSERT = text(
    "INSERT INTO recording_sessions (id, company_id, appointment_id, started_by, status, source, created_at)"
    " VALUES (:id, :company_id, :appointment_id, :started_by, 'recording', :source, :created_at) RETURNING id"
)

#: Inserts tried when the session that blocked one has ended before it could be named.
_INSERT_ATTEMPTS = 3


async def _insert_session(
    ctx: AppContext, uow: UnitOfWork, principal: Principal, appointment: Appointment, source: str
) -> RecordingSession:
    """Insert the active session, with the partial unique index as the last word.

    When the index refuses it, the 409 names the active session, read again
    after the refusal. That session may have been stopped in between (read
    committed: the refusal and the read are two statements), and a conflict
    naming no session breaks the promise that a refused start names what
    blocked it; with no active session left the start is no longer in conflict,
    so it tries the insert again (found by redis-flap, where the lock is lost).
    """
    guarded = not ctx.settings.weakened("session-unique-index")
    # Weakened ``session-index-unhandled``: the index is there, but its refusal is not expected (a plain
    # insert, as the original's ORM add without a savepoint): a start it refuses answers 500.
    insert = _INSERT_ACTIVE if guarded and not ctx.settings.weakened("session-index-unhandled") else _INSERT
    for _ in range(_INSERT_ATTEMPTS):
        recording = RecordingSession(
            id=uuid.uuid4(),
            company_id=appointment.company_id,
            appointment_id=appointment.id,
            started_by=principal.user_id,
            status="recording",
            source=source,
            created_at=utcnow(),
            stopped_at=None,
        )
        params = {
            "id": recording.id, "company_id": recording.company_id, "appointment_id": recording.appointment_id,
            "started_by": recording.started_by, "source": source, "created_at": recording.created_at,
        }
        try:
            inserted = (await uow.session.execute(insert, params)).first()
        except IntegrityError as exc:
            if isinstance(exc.orig, ForeignKeyViolation) and not ctx.settings.weakened("start-deleted-appointment"):
                # The appointment was deleted (by a deletion or retention) after it was read. Weakened
                # ``start-deleted-appointment``: the violation is not expected, and the start answers 500.
                raise Problem("not-found", "appointment not found") from None
            raise
        if inserted is not None:
            return recording  # not added to the session: answered as inserted, nothing else to write
        METRICS.guard_rejections.labels(ACTIVE_INDEX).inc()
        await ctx.race_window()  # tests widen the gap between the refusal and the read
        existing = await _active_session(uow, appointment)
        if existing is not None:
            raise _conflict(existing)
    # Refused every time, and every time the blocker was gone before it could be read:
    # a start storm on this appointment; the client retries.
    raise Problem("resource-busy", "the appointment's sessions are changing; retry")


async def stop_session(
    ctx: AppContext, uow: UnitOfWork, principal: Principal, session_id: str | uuid.UUID
) -> RecordingSession:
    """Stop a session; stopping a stopped session answers its state unchanged."""
    recording = await get_owned(
        uow.session, RecordingSession, session_id, principal, ctx.settings,
        what="recording session", for_update=True,
    )
    if recording.started_by != principal.user_id and ctx.settings.weakened("session-owner-scope"):
        # Weakened: the ownership check compares the session's starter with the caller (the user, where the
        # tenant was meant): a session is "not found" to every other user of its own company.
        raise Problem("not-found", "recording session not found")
    if recording.started_by != principal.user_id and ctx.settings.weakened("stop-starter-only"):
        # Weakened: a permission check that lets only the session's starter stop it; every other user of the
        # tenant is forbidden.
        raise Problem("forbidden", "only the user who started a recording session may stop it")
    if recording.status not in ACTIVE_SESSION_STATUSES and ctx.settings.weakened("stop-finds-active-only"):
        # A lookup of active sessions only: a stopped session is "not found" to a retried stop.
        raise Problem("not-found", "recording session not found")
    if recording.status in ACTIVE_SESSION_STATUSES and ctx.settings.weakened("stop-write-behind"):
        uow.session.expunge(recording)  # answered from memory; the row is written later
        recording.status, recording.stopped_at = "stopped", utcnow()
        _write_behind(ctx, recording.id, recording.stopped_at)
        METRICS.sessions_stopped.labels(recording.source).inc()
    elif recording.status in ACTIVE_SESSION_STATUSES and ctx.settings.weakened("stop-answers-stale"):
        # Weakened: one bulk UPDATE instead of a flush of the loaded row, which it leaves as it was.
        await uow.session.execute(
            update(RecordingSession).where(RecordingSession.id == recording.id)
            .values(status="stopped", stopped_at=utcnow()).execution_options(synchronize_session=False))
        METRICS.sessions_stopped.labels(recording.source).inc()
    elif recording.status in ACTIVE_SESSION_STATUSES:
        recording.status = "stopped"
        recording.stopped_at = utcnow()
        await uow.session.flush()
        METRICS.sessions_stopped.labels(recording.source).inc()
    elif ctx.settings.weakened("stop-idempotent"):
        # The original refused a second stop, so a client retrying a lost answer saw an error.
        raise Problem("conflict", f"recording session {recording.id} is not active")
    return recording


#: Writes left for later under the weakening stop-write-behind (held so they are not garbage-collected).
_BEHIND: set[asyncio.Task[None]] = set()


def _write_behind(ctx: AppContext, session_id: uuid.UUID, stopped_at: datetime) -> None:
    """The original's buffered write: the stop reaches the database ``write_behind_ms`` after its answer."""

    async def write(uow: UnitOfWork) -> None:
        await uow.session.execute(
            update(RecordingSession)
            .where(RecordingSession.id == session_id, RecordingSession.status.in_(ACTIVE_SESSION_STATUSES))
            .values(status="stopped", stopped_at=stopped_at)
        )

    async def later() -> None:
        await asyncio.sleep(ctx.settings.write_behind_ms / 1000)
        await run_in_transaction(ctx.sessions, write)

    task = asyncio.get_running_loop().create_task(later())
    _BEHIND.add(task)
    task.add_done_callback(_BEHIND.discard)
