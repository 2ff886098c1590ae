"""What a request handler needs from the running app, built once in the lifespan."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .services.locks import RedisLocks
from .settings import Settings

__all__ = ["AppContext"]


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: "aioredis.Redis"
    locks: RedisLocks

    async def race_window(self) -> None:
        """The optional, documented pause between a check and its write (tests only)."""
        if self.settings.race_delay_ms:
            await asyncio.sleep(self.settings.race_delay_ms / 1000)
