"""A Redis lock: ``SET key token NX PX ttl`` and a token-checked release.

The lock narrows races; it does not decide them. A holder paused past the TTL
loses the lock without knowing (Kleppmann 2016), so every write it guards is
also guarded by the database. For the same reason a Redis outage does not stop
writes: the lock fails open, counted in ``redis_lock_acquire_total{outcome="error"}``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..obs.metrics import METRICS
from ..problems import Problem

__all__ = ["RedisLocks"]

log = logging.getLogger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLocks:
    def __init__(self, client: "aioredis.Redis", *, ttl_ms: int, wait_ms: int, fail_open: bool = True) -> None:
        """``fail_open=False`` is the weakening ``redis-fail-open``: a Redis error propagates (a 500)."""
        self._client = client
        self._fail_open = fail_open
        self._release_script = client.register_script(_RELEASE)  # EVALSHA: the script's text is sent once
        self._ttl_ms = ttl_ms
        self._wait_ms = wait_ms

    @asynccontextmanager
    async def hold(self, key: str, *, kind: str) -> AsyncIterator[bool]:
        """Hold ``key`` for the block; yields False when Redis failed and the lock is open.

        Waits up to ``wait_ms`` for a holder to finish, then answers 409 resource-busy.
        """
        token = secrets.token_hex(16)
        acquired = False
        try:
            acquired = await self._acquire(key, token)
        except RedisError as exc:
            METRICS.locks.labels(kind, "error").inc()
            if not self._fail_open:
                raise
            log.warning("lock %s unavailable, relying on the database guard: %s", key, exc)
            yield False
            return
        if not acquired:
            METRICS.locks.labels(kind, "busy").inc()
            raise Problem(
                "resource-busy",
                "another request holds this resource; retry",
                headers={"Retry-After": "1"},
            )
        METRICS.locks.labels(kind, "acquired").inc()
        try:
            yield True
        finally:
            await self._release(key, token, kind)

    async def _acquire(self, key: str, token: str) -> bool:
        deadline = time.monotonic() + self._wait_ms / 1000
        delay = 0.005
        while True:
            if await self._client.set(key, token, nx=True, px=self._ttl_ms):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def _release(self, key: str, token: str, kind: str) -> None:
        try:
            released = await self._release_script(keys=[key], args=[token])
        except RedisError as exc:
            log.warning("lock %s release failed: %s", key, exc)
            return
        if not released:
            METRICS.locks_lost.labels(kind).inc()
            log.warning("lock %s had expired before release (held past its TTL)", key)
