"""Enqueueing tasks with de-duplication and a ledger; finishing them, or dead-lettering them.

Every enqueue writes a ``task_records`` row *before* the message is published,
so the ledger never misses a task the broker has; every end of a task updates
that row. ``enqueued = succeeded + dead_lettered + in flight`` is then a
property anyone can check in the database (the harness does).

Publication goes through the transactional outbox (:mod:`.outbox`): the
ledger row and the outbox row are written in the caller's transaction, and the
relay publishes them. With the weakening ``outbox`` the queue publishes
straight to the broker after the commit, as the original did, and a broker
restart loses what it held.

De-duplication (plan A4/B2): a work item's key is unique among live outbox
rows; with ``outbox`` weakened it is marked in Redis with ``SET NX EX`` when
it is enqueued and cleared when its task ends. Either way the same item is not
queued twice meanwhile (weakening ``task-dedupe``).

Dead letters (plan C2): a task out of retries gets a ``dead_letters`` row with
its error, listed and retried through the API; with the weakening
``dead-letter-queue`` it is logged and dropped, as in the original.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from celery import Celery
from redis.exceptions import RedisError
from sqlalchemy import event, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..models import DeadLetter, TaskRecord
from ..models.tasks import try_rearmed, try_refused, try_started
from ..models.base import utcnow
from ..obs.metrics import METRICS
from ..obs.tracing import current_trace_id
from ..settings import Settings
from .outbox import Delivery, Outbox
from .rate_limit import Limit, RateLimiter

__all__ = ["Again", "TaskQueue", "Enqueued", "TaskRateLimited"]

log = logging.getLogger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class TaskRateLimited(Exception):
    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"tenant task-enqueue rate limit reached; retry in {retry_after_s}s")


@dataclass(frozen=True, slots=True)
class Again:
    """Why and when a task runs again, as its ledger records it (``task_records.tries``, plan C1).

    ``failure``: how many of its tries failed so far (None: the next poll of a
    pending job, not a failure); ``throttled``: a rate limit's Retry-After set a
    floor under the backoff.
    """

    wait_s: float
    failure: int | None = None
    throttled: bool = False

    def event(self) -> Any:
        return try_rearmed(self.wait_s, self.failure, self.throttled)


@dataclass(frozen=True, slots=True)
class Enqueued:
    task_id: str
    deduplicated: bool


class TaskQueue:
    def __init__(
        self,
        celery: Celery,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        redis: "aioredis.Redis",
        limiter: RateLimiter,
        outbox: Outbox,
    ) -> None:
        self.celery = celery
        self.outbox = outbox
        self._settings = settings
        self._sessions = sessions
        self._redis = redis
        self._limiter = limiter
        self._limit = Limit("tasks", settings.rate_tasks_per_second, max(1, settings.rate_tasks_per_second))
        self._retry_limit = Limit("retries", settings.retry_budget_per_second, settings.retry_budget_burst)

    @property
    def direct(self) -> bool:
        """Weakening ``outbox``: publish straight to the broker, as the original did."""
        return self._settings.weakened("outbox")

    async def admit(self, company_id: uuid.UUID) -> None:
        """Raise :class:`TaskRateLimited` when the tenant's task-enqueue allowance is used up.

        Weakening ``rate-limit-tasks``: no task allowance (the API limit alone stands)."""
        if self._settings.weakened("rate-limit-tasks"):
            return
        decision = await self._limiter.check(self._limit, company_id)
        if not decision.allowed:
            raise TaskRateLimited(decision.retry_after_s)

    async def retry_allowed(self, company_id: uuid.UUID | None) -> bool:
        """Whether the tenant's retry budget (plan C1 item 3) lets a failed task retry now.

        Why: without it one tenant whose jobs keep failing (a bad input, its quota spent upstream) fills
        the workers and Shunya with retries, and every tenant's work waits. A refused retry dead-letters
        its task (recoverable by the manual retry), it is never dropped. Weakenings: ``tenant-retry-budget``
        (no budget), ``tenant-retry-budget-shared`` (one budget for all tenants: one tenant's failures
        spend another's retries)."""
        if company_id is None or self._settings.weakened("tenant-retry-budget"):
            return True
        tenant = "all" if self._settings.weakened("tenant-retry-budget-shared") else company_id
        return (await self._limiter.check(self._retry_limit, tenant)).allowed

    @staticmethod
    def _dedupe_redis_key(name: str, key: str) -> str:
        return f"taskdedupe:{name}:{key}"

    async def enqueue(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        company_id: uuid.UUID,
        dedupe_key: str | None = None,
        countdown: float | None = None,
        check_rate: bool = True,
        session: AsyncSession | None = None,
    ) -> Enqueued:
        """Queue a task: in ``session``'s transaction when given (it commits or rolls back with it)."""
        if check_rate:
            await self.admit(company_id)
        if self.direct:
            return await self._publish_directly(name, kwargs, company_id, dedupe_key, countdown)
        if session is not None:
            return await self._write(session, name, kwargs, company_id, dedupe_key, countdown)
        async with self._sessions() as own, own.begin():
            queued = await self._write(own, name, kwargs, company_id, dedupe_key, countdown)
        self.outbox.nudge()
        return queued

    async def enqueue_with(
        self, session: AsyncSession, after: AsyncExitStack, name: str, kwargs: dict[str, Any], *,
        company_id: uuid.UUID, dedupe_key: str | None = None, check_rate: bool = True,
    ) -> None:
        """Queue a task with a handler's business write: in its transaction (outbox), or after its commit."""
        if self.direct:
            after.push_async_callback(self._enqueue_logged, name, kwargs, company_id, dedupe_key, check_rate)
            return
        await self.enqueue(name, kwargs, company_id=company_id, dedupe_key=dedupe_key, check_rate=check_rate,
                           session=session)
        after.callback(self.outbox.nudge)

    async def _enqueue_logged(
        self, name: str, kwargs: dict[str, Any], company_id: uuid.UUID, dedupe_key: str | None, check_rate: bool
    ) -> None:
        try:
            await self.enqueue(name, kwargs, company_id=company_id, dedupe_key=dedupe_key, check_rate=check_rate)
        except Exception as exc:  # noqa: BLE001 - the ledger or dead-letter table says what happened
            log.error("%s %s could not be queued: %s", name, kwargs, exc)

    async def _write(
        self, session: AsyncSession, name: str, kwargs: dict[str, Any], company_id: uuid.UUID,
        dedupe_key: str | None, countdown: float | None,
    ) -> Enqueued:
        task_id = uuid.uuid4().hex
        trace_id = self._trace_id()
        unique_key = dedupe_key if dedupe_key is not None and not self._settings.weakened("task-dedupe") else None
        if unique_key is not None and self._settings.weakened("task-dedupe-ledger"):
            ever = await session.scalar(
                select(TaskRecord.task_id).where(TaskRecord.name == name, TaskRecord.dedupe_key == unique_key)
                .order_by(TaskRecord.created_at.desc()).limit(1)
            )
            if ever is not None:
                METRICS.task_dedupe_hits.labels(name).inc()
                return Enqueued(ever, True)
        existing = await self.outbox.add(
            session, task_id=task_id, name=name, kwargs=kwargs, company_id=company_id, dedupe_key=unique_key,
            trace_id=trace_id, countdown=countdown,
        )
        if existing is not None:
            METRICS.task_dedupe_hits.labels(name).inc()
            return Enqueued(existing, True)
        await session.execute(
            insert(TaskRecord).values(
                task_id=task_id, name=name, company_id=company_id, dedupe_key=dedupe_key,
                args=kwargs, state="queued", attempts=0, trace_id=trace_id, created_at=utcnow(),
            )
        )
        # Counted when the transaction commits: a rolled-back write enqueued nothing.
        event.listen(session.sync_session, "after_commit", lambda _: METRICS.tasks_enqueued.labels(name).inc(),
                     once=True)
        return Enqueued(task_id, False)

    def _trace_id(self) -> str | None:
        """The request's trace id for its tasks; weakened ``trace-propagation``: lost (the original's gap)."""
        return None if self._settings.weakened("trace-propagation") else current_trace_id()

    async def _publish_directly(
        self, name: str, kwargs: dict[str, Any], company_id: uuid.UUID, dedupe_key: str | None,
        countdown: float | None,
    ) -> Enqueued:
        """The original path (weakening ``outbox``): ledger row, then straight to the broker."""
        task_id = uuid.uuid4().hex
        dedupe = dedupe_key is not None and not self._settings.weakened("task-dedupe")
        if dedupe:
            assert dedupe_key is not None
            redis_key = self._dedupe_redis_key(name, dedupe_key)
            try:
                claimed = await self._redis.set(redis_key, task_id, nx=True, ex=self._settings.task_dedupe_ttl_seconds)
            except RedisError as exc:
                log.warning("task de-duplication unavailable for %s: %s", redis_key, exc)
                claimed = True
            if not claimed:
                existing = await self._redis.get(redis_key)
                METRICS.task_dedupe_hits.labels(name).inc()
                return Enqueued(existing.decode() if existing else "", True)
        trace_id = self._trace_id()
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(TaskRecord).values(
                    task_id=task_id, name=name, company_id=company_id, dedupe_key=dedupe_key,
                    args=kwargs, state="queued", attempts=0, trace_id=trace_id, created_at=utcnow(),
                )
            )
        if self._settings.race_delay_ms:
            # Tests only (STORMPROOF_RACE_DELAY_MS): widen the gap between the ledger's commit and the
            # publication, where a crash of this process loses the task (the gap the outbox closes), so
            # that a kill lands in it every time rather than by luck.
            await asyncio.sleep(self._settings.race_delay_ms / 1000)
        try:
            await asyncio.to_thread(
                self.celery.send_task,
                name,
                kwargs=kwargs,
                task_id=task_id,
                countdown=countdown,
                headers={"trace_id": trace_id},
            )
        except Exception as exc:  # noqa: BLE001 - the broker is down: the ledger must say so
            log.error("publishing %s failed: %s", name, exc)
            await self.dead_letter(task_id, name, kwargs, company_id, f"enqueue failed: {exc}", 0, trace_id)
            if dedupe and dedupe_key is not None:
                await self.release_dedupe(name, dedupe_key, task_id)
            raise
        METRICS.tasks_enqueued.labels(name).inc()
        return Enqueued(task_id, False)

    async def release_dedupe(self, name: str, dedupe_key: str, task_id: str) -> None:
        try:
            await self._redis.eval(_RELEASE, 1, self._dedupe_redis_key(name, dedupe_key), task_id)
        except RedisError as exc:
            log.warning("could not clear de-duplication mark %s: %s", dedupe_key, exc)

    # -- the ledger, as tasks run -------------------------------------------
    async def mark(self, task_id: str, state: str, *, error: str | None = None, attempt: bool = False,
                   again: Again | None = None) -> None:
        """Record a task's state; ``attempt``: a try begins; ``again``: the try ends, the task runs again later."""
        values: dict[str, Any] = {"state": state}
        if error is not None:
            values["last_error"] = error[:2000]
        if attempt:
            values["attempts"] = TaskRecord.attempts + 1
            values["tries"] = try_started()
        if again is not None:
            values["tries"] = again.event()
        finished = state in ("succeeded", "dead_lettered", "dropped")
        if finished:
            values["finished_at"] = utcnow()
        async with self._sessions() as session, session.begin():
            await session.execute(update(TaskRecord).where(TaskRecord.task_id == task_id).values(**values))
            if finished:  # the task's end and the end of its outbox row are one fact
                await Outbox.remove(session, task_id)

    # -- the outbox's side of a delivery -----------------------------------
    async def begin(
        self, task_id: str, name: str, kwargs: dict[str, Any], company_id: uuid.UUID | None, publication: int | None
    ) -> Delivery | None:
        """Start a delivery (see :meth:`Outbox.begin`); None: skip it, it is a duplicate."""
        return await self.outbox.begin(task_id, name, kwargs, company_id, self._trace_id(), publication)

    async def retry_later(
        self, task_id: str, name: str, kwargs: dict[str, Any], company_id: uuid.UUID | None, again: Again,
        *, error: str | None = None,
    ) -> None:
        """Run the task again ``again.wait_s`` seconds from now with ``kwargs``: its outbox row is re-armed, durably."""
        countdown = again.wait_s
        values: dict[str, Any] = {"state": "retrying", "tries": again.event()}
        if error is not None:
            values["last_error"] = error[:2000]
        async with self._sessions() as session, session.begin():
            changed = await session.execute(
                update(TaskRecord)
                .where(TaskRecord.task_id == task_id, TaskRecord.state.not_in(("succeeded", "dead_lettered", "dropped")))
                .values(**values)
            )
            if changed.rowcount:
                await self.outbox.rearm(session, task_id=task_id, name=name, kwargs=kwargs, company_id=company_id,
                                        trace_id=self._trace_id(), countdown=countdown)

    async def ensure_record(self, task_id: str, name: str, kwargs: dict[str, Any], company_id: uuid.UUID | None) -> None:
        """A task arriving without a ledger row (sent by hand) gets one, so accounting still holds."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(TaskRecord)
                .values(task_id=task_id, name=name, company_id=company_id, args=kwargs, state="queued",
                        attempts=0, trace_id=self._trace_id(), created_at=utcnow())
                .on_conflict_do_nothing()
            )

    async def finish(self, task_id: str, name: str, *, dedupe_key: str | None) -> None:
        await self.mark(task_id, "succeeded")
        METRICS.tasks_finished.labels(name, "succeeded").inc()
        if dedupe_key and self.direct:
            await self.release_dedupe(name, dedupe_key, task_id)

    async def give_up(
        self,
        task_id: str,
        name: str,
        kwargs: dict[str, Any],
        company_id: uuid.UUID | None,
        error: str,
        attempts: int,
        *,
        dedupe_key: str | None,
        refused: bool = False,
    ) -> None:
        """Out of retries: dead-letter it (or, weakened, drop it as the original did).

        ``refused``: its retry was refused by the tenant's retry budget (its ledger records the refusal)."""
        if self._settings.weakened("dead-letter-queue"):
            log.error("task %s %s dropped after %d attempts: %s", name, task_id, attempts, error)
            await self.mark(task_id, "dropped", error=error)
            METRICS.tasks_finished.labels(name, "dropped").inc()
        else:
            await self.dead_letter(task_id, name, kwargs, company_id, error, attempts, self._trace_id(),
                                   refused=refused)
        if dedupe_key and self.direct:
            await self.release_dedupe(name, dedupe_key, task_id)

    async def dead_letter(
        self,
        task_id: str,
        name: str,
        kwargs: dict[str, Any],
        company_id: uuid.UUID | None,
        error: str,
        attempts: int,
        trace_id: str | None,
        *,
        refused: bool = False,
    ) -> None:
        ended: dict[str, Any] = {"tries": try_refused()} if refused else {}
        async with self._sessions() as session, session.begin():
            session.add(
                DeadLetter(
                    id=uuid.uuid4(), company_id=company_id, task_id=task_id, task_name=name, args=kwargs,
                    error=error[:2000], attempts=attempts, trace_id=trace_id, status="dead", created_at=utcnow(),
                )
            )
            await session.execute(
                update(TaskRecord)
                .where(TaskRecord.task_id == task_id)
                .values(state="dead_lettered", last_error=error[:2000], finished_at=utcnow(), **ended)
            )
            await Outbox.remove(session, task_id)
        METRICS.tasks_finished.labels(name, "dead_lettered").inc()
        log.error("task %s %s dead-lettered after %d attempts: %s", name, task_id, attempts, error)
