"""What request handlers and tasks need from the running app, built in one place.

The API's lifespan and each Celery worker process call :func:`build_context`,
so both sides share one wiring of the database, Redis, locks, rate limits, the
Shunya client and the task queue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .services.locks import RedisLocks
from .services.rate_limit import Limit, RateLimiter
from .settings import Settings

if TYPE_CHECKING:
    from .services.outbox import Outbox
    from .services.shunya_client import ShunyaClient
    from .services.task_queue import TaskQueue

__all__ = ["AppContext", "build_context", "make_redis"]


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: "aioredis.Redis"
    locks: RedisLocks
    limiter: RateLimiter
    shunya: "ShunyaClient"
    tasks: "TaskQueue"
    #: Autocommit sessions for read-only handlers (no BEGIN/ROLLBACK round trips): never write through them.
    #: Made from ``engine`` when not given.
    reads: async_sessionmaker[AsyncSession] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.reads is None and self.engine is not None:
            from .db import make_read_sessionmaker

            self.reads = make_read_sessionmaker(self.engine)

    @property
    def api_limit(self) -> Limit:
        s = self.settings
        return Limit("api", s.rate_api_per_second, s.rate_api_burst)

    async def race_window(self, race: str | None = None, *, barrier_only: bool = False) -> None:
        """The optional, documented pause between a check and its write (tests only).

        ``STORMPROOF_RACE_DELAY_MS`` alone: a fixed sleep, which widens the window
        but cannot promise that a second caller comes in while it is open. With
        ``STORMPROOF_RACE_BARRIER=n`` too, callers of the same ``race`` (one
        appointment, one job) wait in the window until ``n`` of them are inside,
        at most the delay: with no guard in the way, ``n`` callers pass the
        check before any of them writes, every time. The count lives in Redis,
        so the API and the task workers meet there.

        ``barrier_only``: a window that opens only with a barrier (a test that
        meets two callers of this race), so that a test widening another
        race's window with the delay alone does not slow this step too (the
        deletion's confirmation, which a start racing it must not wait for).
        """
        settings = self.settings
        if not settings.race_delay_ms or (barrier_only and settings.race_barrier <= 1):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.race_delay_ms / 1000
        if settings.race_barrier > 1 and race is not None:
            key = f"racebarrier:{race}"
            try:
                inside = int(await self.redis.incr(key))
                await self.redis.expire(key, settings.race_delay_ms // 1000 + 60)
                while inside < settings.race_barrier and loop.time() < deadline:
                    await asyncio.sleep(0.005)
                    inside = int(await self.redis.get(key) or 0)
                return
            except RedisError:
                pass  # no Redis: the plain window below
        await asyncio.sleep(max(0.0, deadline - loop.time()))

    async def aclose(self) -> None:
        await self.shunya.aclose()
        await self.redis.aclose()
        await self.engine.dispose()


#: Seconds a Redis command waits for a pooled connection, and for Redis's answer.
_REDIS_TIMEOUT_S = 2


def make_redis(url: str, *, pool_size: int = 64, wait_for_connection: bool = True) -> "aioredis.Redis":
    """The app's Redis client: fails fast, never retries, and never sends on a connection Redis closed.

    A command waits (up to 2 s) for a free pooled connection instead of failing. redis-py's
    default pool fails a command at once when its 100 connections are in use, with an error
    like any other of Redis's: measured 2026-12-02, a burst of 120 simultaneous requests from
    one tenant had 20 to 30 of them fail the rate limiter's call and be allowed (fail open, as
    during an outage) at 2 per second, burst 10; the locks fail open alike. Redis is up: only the
    pool is busy, and waiting is correct. ``wait_for_connection=False`` is the weakening
    ``redis-pool-wait`` (a pool of ``pool_size`` that fails at once).

    No retries: a command whose answer was lost (INCR, SET NX) may have been
    applied, and a retry would apply it twice; the caller decides. Stale
    connections are another matter: after a Redis restart (or a reset link)
    every pooled connection has been closed by the server, and the pool must
    replace each one before use instead of failing one request per connection.
    redis-py checks that at checkout, but from redis-py 6 on it skips the check
    while "maintenance notifications" are on, and their default ("auto") counts
    as on: measured, after a Redis restart the first command on each pooled
    connection failed with "Connection closed by server". They are a Redis
    Enterprise feature this app does not use, so they are switched off.
    """
    options: dict[str, object] = {}
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # redis-py before 6: no notifications, and the checkout check always runs
        pass
    else:
        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    pool_class = aioredis.BlockingConnectionPool if wait_for_connection else aioredis.ConnectionPool
    extra: dict[str, object] = {"timeout": _REDIS_TIMEOUT_S} if wait_for_connection else {}
    pool = pool_class.from_url(url, max_connections=pool_size, socket_connect_timeout=1,
                               socket_timeout=_REDIS_TIMEOUT_S, retry=Retry(NoBackoff(), 0), **extra, **options)
    return aioredis.Redis.from_pool(pool)


def build_context(settings: Settings, *, pool_size: int | None = None) -> AppContext:
    from .db import make_engine, make_sessionmaker
    from .services.outbox import Outbox
    from .services.shunya_client import ShunyaClient
    from .services.task_queue import TaskQueue
    from .worker.celery_app import make_celery

    engine = make_engine(settings, pool_size=pool_size)
    sessions = make_sessionmaker(engine)
    redis_client = make_redis(settings.redis_url, pool_size=settings.redis_pool_size,
                              wait_for_connection=not settings.weakened("redis-pool-wait"))
    limiter = RateLimiter(redis_client, enabled=not settings.weakened("rate-limit"),
                          per_tenant=not settings.weakened("rate-limit-per-tenant"),
                          fail_open=not settings.weakened("redis-fail-open"),
                          fail_closed=settings.weakened("rate-limit-fail-closed"),
                          count_refusals=settings.weakened("rate-limit-counts-refusals"),
                          atomic=not settings.weakened("rate-limit-atomic"))
    shunya = ShunyaClient(
        settings.shunya_url,
        timeout_ms=settings.shunya_timeout_ms,
        limiter=limiter,
        limit=Limit("shunya", settings.rate_shunya_per_second, max(1, settings.rate_shunya_per_second)),
        limited=not settings.weakened("shunya-limit"),
        count_error_answers=not settings.weakened("shunya-failure-metrics"),
        one_error_endpoint=settings.weakened("shunya-error-endpoint"),
        refuse_429=settings.weakened("shunya-429-refused"),
        check_refusals=not settings.weakened("shunya-refusal-checked"),
        only_200=settings.weakened("shunya-created-refused"),
        check_shape=not settings.weakened("shunya-answer-shape-checked"),
    )
    celery = make_celery(settings)
    tasks = TaskQueue(
        celery,
        settings=settings,
        sessions=sessions,
        redis=redis_client,
        limiter=limiter,
        outbox=Outbox(celery, settings=settings, engine=engine, sessions=sessions),
    )
    return AppContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis_client,
        locks=RedisLocks(redis_client, ttl_ms=settings.lock_ttl_ms, wait_ms=settings.lock_wait_ms,
                         fail_open=not settings.weakened("redis-fail-open")),
        limiter=limiter,
        shunya=shunya,
        tasks=tasks,
    )
