"""A transaction plus what must happen after it ends (releasing locks), in one helper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["UnitOfWork", "run_in_transaction"]

T = TypeVar("T")


@dataclass
class UnitOfWork:
    """A handler's transaction, plus a stack closed *after* commit or rollback.

    Locks go on ``after`` so that they are released only once the write is
    durable; released earlier, a second request could check before the commit.
    """

    session: AsyncSession
    after: AsyncExitStack


async def run_in_transaction(
    sessions: async_sessionmaker[AsyncSession], operation: Callable[[UnitOfWork], Awaitable[T]]
) -> T:
    async with AsyncExitStack() as after:
        async with sessions() as session:
            async with session.begin():
                return await operation(UnitOfWork(session, after))
