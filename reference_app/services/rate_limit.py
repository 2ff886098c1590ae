"""Per-tenant rate limits in Redis (plan C3): API requests, Shunya calls and task enqueues.

GCRA (the generic cell rate algorithm): one key per (scope, tenant) holding a
"theoretical arrival time", updated atomically by a Lua script that reads
Redis's own clock, so app processes with skewed clocks agree. Each tenant has
its own key, so a flooding tenant exhausts only its own allowance. A Redis
outage fails open (counted), like the locks: limits protect capacity, not
correctness.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..obs.metrics import METRICS

__all__ = ["RateLimiter", "Decision", "Limit"]

log = logging.getLogger(__name__)

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
    return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0}
"""

#: Weakened ``rate-limit-counts-refusals``: the arrival time is stored before the check, so a refused
#: request spends allowance too; a tenant that keeps sending over its rate is kept out for good.
_GCRA_COUNTING_REFUSALS = _GCRA.replace(
    "if allow_at > now then\n    return {0, allow_at - now}\nend\n"
    "redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)\n",
    "redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)\n"
    "if allow_at > now then\n    return {0, allow_at - now}\nend\n")
assert _GCRA_COUNTING_REFUSALS != _GCRA


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str
    per_second: int
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_second > 0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_s: int = 0


class RateLimiter:
    def __init__(self, client: "aioredis.Redis", *, enabled: bool = True, per_tenant: bool = True,
                 fail_open: bool = True, fail_closed: bool = False, count_refusals: bool = False,
                 atomic: bool = True) -> None:
        """``per_tenant=False`` is the weakening ``rate-limit-per-tenant``: one key for everyone;
        ``fail_open=False`` is ``redis-fail-open``: a Redis error propagates (the request answers 500);
        ``fail_closed=True`` is ``rate-limit-fail-closed``: a Redis error refuses the request (429);
        ``count_refusals=True`` is ``rate-limit-counts-refusals``;
        ``atomic=False`` is ``rate-limit-atomic``: the same GCRA read and written in separate round trips
        (GET, then SET), so requests that read the key before any of them wrote it all pass."""
        self._client = client
        self._fail_open = fail_open
        self._fail_closed = fail_closed
        self._enabled = enabled
        self._per_tenant = per_tenant
        self._script = client.register_script(_GCRA_COUNTING_REFUSALS if count_refusals else _GCRA)
        self._atomic = atomic

    async def check(self, limit: Limit, tenant: uuid.UUID | str) -> Decision:
        if not (self._enabled and limit.enabled):
            return Decision(True)
        interval_us = 1_000_000 // limit.per_second
        tolerance_us = interval_us * max(limit.burst, 1)
        try:
            key = f"ratelimit:{limit.scope}:{tenant if self._per_tenant else 'all'}"
            if self._atomic:
                allowed, wait_us = await self._script(keys=[key], args=[interval_us, tolerance_us])
            else:
                allowed, wait_us = await self._read_then_write(key, interval_us, tolerance_us)
        except RedisError as exc:
            if not self._fail_open:
                raise
            if self._fail_closed:  # "when in doubt, refuse": a Redis restart locks every tenant out
                log.warning("rate limit %s unavailable, refusing: %s", limit.scope, exc)
                return Decision(False, 1)
            log.warning("rate limit %s unavailable, allowing: %s", limit.scope, exc)
            return Decision(True)
        if allowed:
            return Decision(True)
        METRICS.rate_limited.labels(limit.scope).inc()
        return Decision(False, max(1, math.ceil(int(wait_us) / 1_000_000)))

    async def _read_then_write(self, key: str, interval_us: int, tolerance_us: int) -> tuple[int, int]:
        """Weakened ``rate-limit-atomic``: the script's steps from Python, one round trip each. Between the GET
        and the SET every other request of the tenant reads the same arrival time, and passes."""
        seconds, micros = await self._client.time()
        now = int(seconds) * 1_000_000 + int(micros)
        stored = await self._client.get(key)
        tat = max(int(float(stored)) if stored else now, now)
        new_tat = tat + interval_us
        allow_at = new_tat - tolerance_us
        if allow_at > now:
            return 0, allow_at - now
        await self._client.set(key, new_tat, px=(new_tat - now) // 1000 + 1000)
        return 1, 0
