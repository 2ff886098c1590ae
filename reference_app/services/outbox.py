"""The transactional outbox: no task is lost when the broker loses its messages.

The broker is Redis without persistence (plan C1 keeps it), so a Redis restart
drops every queued message. The outbox makes PostgreSQL the record of the work
to do, and the broker only its transport:

1. **Write.** A task is an ``outbox`` row (plus its ``task_records`` ledger
   row) inserted in the *same transaction* as the business write that wants it
   (a call submitted, a job refreshed, a dead letter retried). Roll the write
   back and the task was never asked for; commit it and the task is durable.
2. **Relay.** :meth:`Outbox.publish` claims due, unpublished rows
   (``FOR UPDATE SKIP LOCKED``, so several relays share the work), marks them
   published *and commits*, then hands them to Celery, each message carrying
   its publication number. A publish that fails un-marks its row for the next
   round. The relay runs in every API process (:meth:`Outbox.run`, started by
   the app's lifespan) or on its own (``python -m stormproof.reference_app relay``).
3. **Run.** A worker begins a delivery only if the ledger says the task has
   not ended, no other worker is running it (a PostgreSQL advisory lock held
   for the run, released by PostgreSQL if the worker dies), and the message is
   not superseded by a newer publication already begun. A task that must run
   again later (a retry, the next poll) re-arms its row with the new arguments
   and due time in one transaction with its ledger update, instead of sending
   itself back to the broker. The transaction that records the task's end
   deletes its row.
4. **Sweep.** :meth:`Outbox.sweep` re-arms rows published (or begun) more than
   ``STORMPROOF_OUTBOX_REDELIVER_SECONDS`` ago whose task is not running (its
   advisory lock is free): the broker lost the message, or the worker died
   with it. The relay then publishes them again. The bound doubles for each
   publication in a row that no worker began (at most 8 times the bound), so
   that messages merely waiting in a long queue do not lengthen it.

Delivery guarantee: **at least once, applied exactly once.** Every committed
task is published until a worker records its end; a message may arrive more
than once (a re-publication, a broker redelivery), and the checks above plus
the consumers' own guards (the job's conditional update and unique index) make
the extra arrivals no-ops. Bounds: a task waits at most about one relay
interval after its commit or due time while the broker is up; a lost message
or a dead run is published again within the redeliver bound (doubled per
unbegun re-publication, at most 8 times) plus one sweep interval of the broker
coming back.

De-duplication (plan A4/B2) is the partial unique index on
``outbox (name, dedupe_key)``: a work item is "queued" exactly as long as its
row lives, in the database, so a Redis restart can neither lose the mark nor
leave a mark behind that blocks the work item's re-publication.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import Celery
from sqlalchemy import Interval, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from ..models import OutboxRow, TaskRecord
from ..models.tasks import try_started
from ..models.base import utcnow
from ..obs.metrics import METRICS
from ..settings import Settings

__all__ = ["Outbox", "Delivery", "PUBLICATION_HEADER", "FINISHED_STATES", "SWEEP_DOUBLINGS", "outbox_samples"]

log = logging.getLogger(__name__)

#: The message header carrying the row's publication number.
PUBLICATION_HEADER = "outbox_publication"
FINISHED_STATES = ("succeeded", "dead_lettered", "dropped")
#: First key of the advisory locks that say "a worker is running this task" (second: hashtext(task_id)).
_LOCK_CLASS = 0x0B0C
#: How long a new delivery waits for the previous run of its task to let go of the lock.
_LOCK_WAIT_S = 2.0
#: How many times the sweeper doubles the redeliver bound for a row published again and again unbegun.
SWEEP_DOUBLINGS = 3

_CLAIM = text(
    """
    UPDATE outbox o SET published_at = clock_timestamp(), publications = o.publications + 1
    FROM (SELECT task_id FROM outbox
          WHERE published_at IS NULL AND due_at <= clock_timestamp()
          ORDER BY due_at LIMIT :batch FOR UPDATE SKIP LOCKED) due
    WHERE o.task_id = due.task_id
    RETURNING o.task_id, o.name, o.kwargs, o.trace_id, o.publications
    """
)
# Weakening "outbox-due": every unpublished row is claimed, due or not (a retry runs before its backoff is over).
_CLAIM_UNDUE = text(
    """
    UPDATE outbox o SET published_at = clock_timestamp(), publications = o.publications + 1
    FROM (SELECT task_id FROM outbox
          WHERE published_at IS NULL
          ORDER BY due_at LIMIT :batch FOR UPDATE SKIP LOCKED) due
    WHERE o.task_id = due.task_id
    RETURNING o.task_id, o.name, o.kwargs, o.trace_id, o.publications
    """
)
_SWEEP = text(
    """
    UPDATE outbox SET published_at = NULL, started_at = NULL
    WHERE task_id IN (
        SELECT task_id FROM outbox
        WHERE published_at IS NOT NULL
          AND GREATEST(published_at, due_at, started_at) < clock_timestamp() - make_interval(secs =>
                :bound * power(2, LEAST(GREATEST(publications - started_publication - 1, 0), :doublings)))
          AND pg_try_advisory_xact_lock(:lock_class, hashtext(task_id))
        FOR UPDATE SKIP LOCKED)
    RETURNING task_id, name, publications
    """
)
_SAMPLES = text(
    """
    SELECT count(*) FILTER (WHERE published_at IS NULL AND due_at <= clock_timestamp()),
           COALESCE(EXTRACT(EPOCH FROM clock_timestamp()
                    - min(due_at) FILTER (WHERE published_at IS NULL AND due_at <= clock_timestamp())), 0),
           count(*) FILTER (WHERE published_at IS NOT NULL)
    FROM outbox
    """
)


@dataclass(frozen=True, slots=True)
class _Message:
    task_id: str
    name: str
    kwargs: dict[str, Any]
    trace_id: str | None
    publication: int


@dataclass
class Delivery:
    """A delivery a worker has begun: it holds the task's advisory lock until :meth:`release`."""

    task_id: str
    _conn: AsyncConnection

    async def release(self) -> None:
        try:
            await self._conn.execute(
                select(func.pg_advisory_unlock(_LOCK_CLASS, func.hashtext(self.task_id)))
            )
            await self._conn.commit()
        except Exception as exc:  # noqa: BLE001 - dropping the connection releases it
            log.warning("releasing the run lock of %s: %s", self.task_id, exc)
            await _discard(self._conn)
            return
        await self._conn.close()


async def _discard(conn: AsyncConnection) -> None:
    """Close the connection for good, not back to the pool: a session lock must not outlive its run."""
    try:
        await conn.invalidate()
    except Exception:  # noqa: BLE001
        pass
    await conn.close()


def _add_statement() -> Any:
    """The row's insert, built once: as an ORM insert built per call, SQLAlchemy compiled it again on
    every call (its ORM RETURNING setup missed the statement cache; issue 17)."""
    table = OutboxRow.__table__
    values: dict[str, Any] = {
        name: bindparam(f"v_{name}", type_=table.c[name].type)
        for name in ("task_id", "name", "kwargs", "company_id", "dedupe_key", "trace_id", "created_at")
    }
    values["due_at"] = func.clock_timestamp() + bindparam("v_delay", type_=Interval())
    return (insert(table).values(**values, publications=0, started_publication=0)
            .on_conflict_do_nothing().returning(table.c.task_id))


_ADD = _add_statement()


class Outbox:
    def __init__(
        self, celery: Celery, *, settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self.celery = celery
        self._settings = settings
        self._engine = engine
        self._sessions = sessions
        self._wake = asyncio.Event()

    # -- writing, inside the caller's transaction -----------------------------
    async def add(
        self,
        session: AsyncSession,
        *,
        task_id: str,
        name: str,
        kwargs: dict[str, Any],
        company_id: uuid.UUID | None,
        dedupe_key: str | None,
        trace_id: str | None,
        countdown: float | None = None,
    ) -> str | None:
        """Insert the task's row; the task id of the live row for the same work item if there is one."""
        params = {"v_task_id": task_id, "v_name": name, "v_kwargs": kwargs, "v_company_id": company_id,
                  "v_dedupe_key": dedupe_key, "v_trace_id": trace_id, "v_delay": timedelta(seconds=countdown or 0),
                  "v_created_at": utcnow()}
        for _ in range(3):
            inserted = await session.execute(_ADD, params)
            if inserted.first() is not None:
                return None
            existing = await session.scalar(
                select(OutboxRow.task_id).where(OutboxRow.name == name, OutboxRow.dedupe_key == dedupe_key)
            )
            if existing is not None:
                return existing
            # The live row ended between the insert and the read: try again.
        raise RuntimeError(f"could not queue {name} for {dedupe_key}: its work item kept changing")

    def nudge(self) -> None:
        """Wake this process's relay now (rows were just committed)."""
        self._wake.set()

    # -- the relay and the sweeper ------------------------------------------
    async def publish(self) -> int:
        """Publish every due row (one batch); how many reached the broker."""
        async with self._sessions() as session, session.begin():
            claim = _CLAIM_UNDUE if self._settings.weakened("outbox-due") else _CLAIM
            rows = (await session.execute(claim, {"batch": self._settings.outbox_batch_size})).all()
        if not rows:
            return 0
        messages = [_Message(r.task_id, r.name, dict(r.kwargs), r.trace_id, int(r.publications)) for r in rows]
        sent = await asyncio.to_thread(self._send_all, messages)
        unsent = messages[sent:]
        if unsent:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.task_id.in_([m.task_id for m in unsent]), OutboxRow.started_at.is_(None))
                    # It never reached the broker: its number is free again, and the sweeper's back-off
                    # counts only publications a worker could have begun.
                    .values(published_at=None, publications=OutboxRow.publications - 1)
                )
        return sent

    def _send_all(self, messages: list[_Message]) -> int:
        for i, message in enumerate(messages):
            try:
                self.celery.send_task(
                    message.name,
                    kwargs=message.kwargs,
                    task_id=message.task_id,
                    headers={"trace_id": message.trace_id, PUBLICATION_HEADER: message.publication},
                    retry=False,
                )
            except Exception as exc:  # noqa: BLE001 - the broker is down: the rows wait for the next round
                log.warning("outbox: publishing %s %s failed (%s); %d rows wait for the broker",
                            message.name, message.task_id, exc, len(messages) - i)
                METRICS.outbox_publish_failures.inc()
                return i
            METRICS.outbox_published.inc()
        return len(messages)

    async def sweep(self) -> int:
        """Re-arm rows whose message was lost (published or begun too long ago, and nobody runs them).

        "Too long" is the redeliver bound, doubled for each publication in a row that no worker began
        (at most :data:`SWEEP_DOUBLINGS` times). A message that is only waiting in a long queue is not
        lost, and publishing it again every bound would lengthen the queue it waits in: under a backlog
        longer than the bound that fed itself (measured in relay-worker-kill with a 5 s bound: each
        poll published 29 times, 18,529 duplicate deliveries, 271 s to drain). A message the broker
        really lost (published once, never begun) is still published again after one bound.
        """
        if self._settings.weakened("outbox-sweep"):  # weakened: nothing is ever published again
            return 0
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(
                _SWEEP, {"bound": float(self._settings.outbox_redeliver_seconds), "lock_class": _LOCK_CLASS,
                         "doublings": SWEEP_DOUBLINGS}
            )).all()
        for row in rows:
            log.warning("outbox: %s %s (publication %d) neither ran nor ended in time; publishing it again",
                        row.name, row.task_id, row.publications)
            METRICS.outbox_redelivered.inc()
        return len(rows)

    async def run(self, *, sweep_every_s: float = 1.0) -> None:
        """The relay loop: publish what is due, sweep now and then, sleep a relay interval (or until nudged)."""
        interval = self._settings.outbox_relay_interval_ms / 1000
        next_sweep = 0.0
        while True:
            sent = 0
            try:
                sent = await self.publish()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + sweep_every_s
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database is away: keep trying
                log.warning("outbox relay: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(min(2.0, interval * 5))
            if sent >= self._settings.outbox_batch_size:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    # -- the worker's side ----------------------------------------------------
    async def begin(
        self,
        task_id: str,
        name: str,
        kwargs: dict[str, Any],
        company_id: uuid.UUID | None,
        trace_id: str | None,
        publication: int | None,
    ) -> Delivery | None:
        """Start running a delivery, or None when it must be skipped (ended, running elsewhere, superseded)."""
        conn = await self._engine.connect()
        try:
            locked = await self._lock(conn, task_id)
            if not locked:
                log.info("outbox: %s %s is running elsewhere; this delivery is a duplicate", name, task_id)
                await conn.close()
                return None
            delivery = Delivery(task_id, conn)
            if await self._claim(task_id, name, kwargs, company_id, trace_id, publication):
                return delivery
            await delivery.release()
            return None
        except BaseException:
            await _discard(conn)
            raise

    async def _lock(self, conn: AsyncConnection, task_id: str) -> bool:
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            got = await conn.scalar(select(func.pg_try_advisory_lock(_LOCK_CLASS, func.hashtext(task_id))))
            await conn.commit()
            if got:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def _claim(
        self, task_id: str, name: str, kwargs: dict[str, Any], company_id: uuid.UUID | None,
        trace_id: str | None, publication: int | None,
    ) -> bool:
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(TaskRecord)
                .values(task_id=task_id, name=name, company_id=company_id, args=kwargs, state="queued",
                        attempts=0, trace_id=trace_id, created_at=utcnow())
                .on_conflict_do_nothing()
            )
            state = await session.scalar(
                select(TaskRecord.state).where(TaskRecord.task_id == task_id).with_for_update()
            )
            if state in FINISHED_STATES:
                await session.execute(delete(OutboxRow).where(OutboxRow.task_id == task_id))
                log.info("outbox: %s %s already ended %s; duplicate delivery skipped", name, task_id, state)
                return False
            row = (await session.execute(
                select(OutboxRow).where(OutboxRow.task_id == task_id).with_for_update()
            )).scalar_one_or_none()
            if row is not None:
                if publication is not None:
                    newer = publication > row.started_publication
                    # The same publication begun before and never ended, and its lock was free: that run died.
                    died = publication == row.started_publication and row.started_at is not None
                    if not (newer or died):
                        log.info("outbox: %s %s publication %d superseded; skipped", name, task_id, publication)
                        return False
                row.started_at = utcnow()
                row.started_publication = max(row.publications, publication or 0)
            await session.execute(
                update(TaskRecord).where(TaskRecord.task_id == task_id)
                .values(state="running", attempts=TaskRecord.attempts + 1, tries=try_started())
            )
        return True

    async def rearm(
        self,
        session: AsyncSession,
        *,
        task_id: str,
        name: str,
        kwargs: dict[str, Any],
        company_id: uuid.UUID | None,
        trace_id: str | None,
        countdown: float,
    ) -> None:
        """The task must run again after ``countdown`` seconds with ``kwargs``: its row waits for the relay."""
        due = func.clock_timestamp() + timedelta(seconds=max(0.0, countdown))
        changed = await session.execute(
            update(OutboxRow).where(OutboxRow.task_id == task_id)
            .values(kwargs=kwargs, due_at=due, published_at=None, started_at=None)
        )
        if changed.rowcount == 0:  # a task sent by hand, without a row: it gets one now
            await session.execute(
                insert(OutboxRow)
                .values(task_id=task_id, name=name, kwargs=kwargs, company_id=company_id, trace_id=trace_id,
                        due_at=due, publications=0, started_publication=0, created_at=utcnow())
                .on_conflict_do_nothing()
            )

    @staticmethod
    async def remove(session: AsyncSession, task_id: str) -> None:
        await session.execute(delete(OutboxRow).where(OutboxRow.task_id == task_id))


async def outbox_samples(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, dict[str, str], float]]:
    """Scrape-time gauges: rows waiting for the relay, the age of the oldest, rows published and unfinished."""
    async def read() -> Any:
        async with sessions() as session:
            return (await session.execute(_SAMPLES)).one()

    try:
        backlog, oldest, in_flight = await asyncio.wait_for(read(), timeout=2.0)
    except Exception as exc:  # noqa: BLE001 - the scrape must answer; the gauges are absent meanwhile
        log.warning("outbox gauges unavailable: %s", exc)
        return []
    return [
        ("outbox_backlog", "Outbox rows due and not yet published to the broker", {}, float(backlog)),
        ("outbox_oldest_unpublished_age_seconds",
         "Seconds the oldest due, unpublished outbox row has waited for the relay (0: none)", {}, float(oldest)),
        ("outbox_in_flight", "Outbox rows published whose task has not ended", {}, float(in_flight)),
    ]

