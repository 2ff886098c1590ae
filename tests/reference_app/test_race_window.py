"""The race window tests widen: a fixed sleep, or held open until N callers of one race are inside.

The barrier is what makes the "without guards, duplicates appear" tests
certain instead of likely (issue 11): it must release as soon as the second
caller arrives, keep races of different keys apart, and never wait past the delay.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from stormproof.reference_app.context import AppContext
from stormproof.reference_app.settings import Settings

#: Race keys unique to this run: a barrier's count outlives the test in Redis for a minute.
RUN = uuid.uuid4().hex


def _context(redis_url: str, **settings: Any) -> AppContext:
    client = aioredis.from_url(redis_url)
    return AppContext(settings=Settings(database_url="postgresql://unused", redis_url=redis_url, **settings),
                      engine=None, sessions=None, redis=client, locks=None, limiter=None,  # type: ignore[arg-type]
                      shunya=None, tasks=None)  # type: ignore[arg-type]


async def _timed(ctx: AppContext, race: str | None) -> float:
    started = time.monotonic()
    await ctx.race_window(race)
    return time.monotonic() - started


def test_barrier_releases_when_the_second_caller_arrives(stormproof_redis) -> None:
    async def scenario() -> tuple[float, float]:
        ctx = _context(stormproof_redis.url_for(60), race_delay_ms=10_000, race_barrier=2)
        try:
            first = asyncio.create_task(_timed(ctx, f"apply:{RUN}"))
            await asyncio.sleep(0.3)  # the first caller waits in the window meanwhile
            assert not first.done()
            second = await _timed(ctx, f"apply:{RUN}")
            return await first, second
        finally:
            await ctx.redis.aclose()

    first, second = asyncio.run(scenario())
    assert 0.25 < first < 3, first  # held until the second came, far less than the 10 s delay
    assert second < 1, second


def test_barrier_keeps_races_apart_and_never_outlasts_the_delay(stormproof_redis) -> None:
    async def scenario() -> list[float]:
        ctx = _context(stormproof_redis.url_for(61), race_delay_ms=400, race_barrier=2)
        try:
            return await asyncio.gather(_timed(ctx, f"assign:one:{RUN}"), _timed(ctx, f"assign:two:{RUN}"))
        finally:
            await ctx.redis.aclose()

    one, two = asyncio.run(scenario())
    assert 0.35 < one < 2 and 0.35 < two < 2, (one, two)  # alone in its race: the whole delay, no more


def test_without_barrier_the_window_is_the_fixed_delay(stormproof_redis) -> None:
    async def scenario() -> float:
        ctx = _context(stormproof_redis.url_for(62), race_delay_ms=200)
        try:
            return await _timed(ctx, f"session-start:{RUN}")
        finally:
            await ctx.redis.aclose()

    elapsed = asyncio.run(scenario())
    assert 0.18 < elapsed < 1.5
