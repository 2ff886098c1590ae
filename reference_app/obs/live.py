"""Gauges read at scrape time: the database pool (plan E4) and the Celery queues (E3).

Queue depth is the length of the broker's Redis lists for each queue (kombu
keeps one list per priority step). Active tasks are the broker's unacknowledged
deliveries: a task a worker has taken and not finished, including retries it
holds until their countdown ends. The pool gauges describe the process that
answers the scrape.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

from redis.exceptions import RedisError
from sqlalchemy import event

from ..context import AppContext
from ..worker.celery_app import QUEUE

__all__ = ["pool_samples", "queue_samples"]

Sample = tuple[str, str, dict[str, str], float]
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)
_UNACKED = "unacked"
_MAX_SCAN = 10_000


#: Check-outs counted per pool, under the weakening pool-gauges only.
_checkouts: dict[int, int] = {}


def _counted_checkouts(pool: object) -> float:
    """The naive instrumentation (weakening pool-gauges): a check-out listener and no check-in one."""
    if id(pool) not in _checkouts:
        _checkouts[id(pool)] = 0

        def count(*_: object) -> None:
            _checkouts[id(pool)] += 1

        event.listen(pool, "checkout", count)
    return float(_checkouts[id(pool)])


#: The pool the gauges read under the weakening pool-gauges-source, per engine pool.
_unused: dict[int, object] = {}


def _metrics_pool(pool: object) -> object:
    """The weakening pool-gauges-source: a pool made for the metrics (an engine of its own, as a metrics module
    that builds one from the URL does), configured alike and never used: size 20, nothing held, ever."""
    if id(pool) not in _unused:
        _unused[id(pool)] = pool.recreate()  # type: ignore[attr-defined]
    return _unused[id(pool)]


def pool_samples(ctx: AppContext) -> Iterator[Sample]:
    pool = ctx.engine.sync_engine.pool
    if ctx.settings.weakened("pool-gauges-source"):
        pool = _metrics_pool(pool)
    size = float(pool.size())  # type: ignore[attr-defined]
    checked_out = float(pool.checkedout())  # type: ignore[attr-defined]
    if ctx.settings.weakened("pool-gauges"):
        checked_out = _counted_checkouts(pool)
    idle = float(pool.checkedin())  # type: ignore[attr-defined]
    overflow = float(max(0, pool.overflow()))  # type: ignore[attr-defined]
    yield ("db_pool_size", "Configured connections in the pool", {}, size)
    yield ("db_pool_max_overflow", "Connections allowed beyond the pool size", {}, float(ctx.settings.db_max_overflow))
    yield ("db_pool_active", "Connections checked out", {}, checked_out)
    yield ("db_pool_idle", "Connections idle in the pool", {}, idle)
    yield ("db_pool_overflow", "Connections open beyond the pool size", {}, overflow)


def _queue_keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS]


async def queue_samples(ctx: AppContext, queues: tuple[str, ...] = (QUEUE,)) -> list[Sample]:
    if ctx.settings.weakened("queue-depth-gauge"):
        queues = ("celery",)  # Celery's default queue name; the app routes its tasks elsewhere
    samples: list[Sample] = []
    try:
        for queue in queues:
            depth = 0
            for key in _queue_keys(queue):
                depth += int(await ctx.redis.llen(key))
            samples.append(("celery_queue_depth", "Tasks waiting in the broker queue", {"queue": queue}, float(depth)))
        active: Counter[str] = Counter()
        scanned = 0
        # Weakened ``active-tasks-gauge``: a per-queue key the transport never writes (a guess at its layout),
        # so the gauge says 0 whatever the workers hold.
        unacked = f"{_UNACKED}:{QUEUE}" if ctx.settings.weakened("active-tasks-gauge") else _UNACKED
        async for _, raw in ctx.redis.hscan_iter(unacked, count=500):
            scanned += 1
            if scanned > _MAX_SCAN:
                break
            try:
                _message, _exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                routing_key = "unknown"
            active[str(routing_key)] += 1
        for queue in queues:
            samples.append(("celery_active_tasks", "Tasks delivered to a worker and not yet acknowledged",
                            {"queue": queue}, float(active.get(queue, 0))))
    except RedisError:
        samples.append(("celery_broker_up", "Whether the broker answered the scrape", {}, 0.0))
        return samples
    samples.append(("celery_broker_up", "Whether the broker answered the scrape", {}, 1.0))
    return samples
