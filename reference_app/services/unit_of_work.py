"""A transaction plus what must happen after it ends (releasing locks), in one helper.

Also whether a transaction has written (:func:`wrote_in_transaction`): a keyed
write that refuses (a definite 4xx) before writing anything stores its refusal
in the same transaction; one that wrote first must be rolled back before.
Knowing which saves a savepoint around every keyed write.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..obs.metrics import METRICS

__all__ = ["UnitOfWork", "rerun_if_chosen", "run_in_transaction", "track_writes", "wrote_in_transaction",
           "TRANSACTION_ATTEMPTS"]

#: SQLSTATEs with which PostgreSQL rolls a whole transaction back and asks the client to run it again:
#: deadlock_detected and serialization_failure ("applications ... should be prepared to retry").
_RERUN_SQLSTATES = frozenset(("40P01", "40001"))
#: Runs of a transaction PostgreSQL chose as a victim before its error is answered (a 500).
TRANSACTION_ATTEMPTS = 3

#: Statements that may change rows (a ``WITH`` may hold a data-modifying CTE: counted as a write).
_WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "COPY", "TRUNCATE")
_WROTE = "stormproof_wrote"

T = TypeVar("T")


@dataclass
class UnitOfWork:
    """A handler's transaction, plus a stack closed *after* commit or rollback.

    Locks go on ``after`` so that they are released only once the write is
    durable; released earlier, a second request could check before the commit.
    """

    session: AsyncSession
    after: AsyncExitStack


async def rerun_if_chosen(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` (one whole transaction, locks included) again when PostgreSQL chose it as a victim.

    Writes that lock the same rows in different orders deadlock: PostgreSQL breaks the cycle by failing
    one of them with 40P01, having rolled it back (seen between an assign, which locks the appointment
    and the rep FOR UPDATE, and a session start, whose foreign keys take key-share locks on both; the
    exact cycle was not reproduced with statement logging on). Answered
    as is, that is a 500 with every dependency up (CI's db-latency all-on try, 2026-12-05: a start
    answered 500 between faults). Nothing of the attempt is left (its locks went with ``after``),
    so it runs again, after a short random pause that lets the other side finish.
    """
    for attempt_no in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            return await attempt()
        except DBAPIError as exc:
            state = getattr(exc.orig, "sqlstate", None)
            if state not in _RERUN_SQLSTATES or attempt_no == TRANSACTION_ATTEMPTS:
                raise
            METRICS.transactions_rerun.labels(state).inc()
            await asyncio.sleep(random.uniform(0.005, 0.025) * attempt_no)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def run_in_transaction(
    sessions: async_sessionmaker[AsyncSession], operation: Callable[[UnitOfWork], Awaitable[T]]
) -> T:
    async def attempt() -> T:
        async with AsyncExitStack() as after:
            async with sessions() as session:
                async with session.begin():
                    return await operation(UnitOfWork(session, after))

    return await rerun_if_chosen(attempt)


def _on_begin(conn: object) -> None:
    conn.info[_WROTE] = False  # type: ignore[attr-defined]


def _on_execute(conn: object, cursor: object, statement: str, *_: object) -> None:
    if statement.lstrip()[:8].upper().startswith(_WRITES):
        conn.info[_WROTE] = True  # type: ignore[attr-defined]


def _on_error(context: ExceptionContext) -> None:
    if context.connection is not None:
        context.connection.info[_WROTE] = True  # a failed statement: the transaction may be unusable


def track_writes(engine: Engine) -> None:
    """Note, per connection and transaction, whether a statement that may write (or that failed) was sent."""
    event.listen(engine, "begin", _on_begin)
    event.listen(engine, "before_cursor_execute", _on_execute)
    event.listen(engine, "handle_error", _on_error)


async def wrote_in_transaction(session: AsyncSession) -> bool:
    """Whether ``session``'s transaction sent a write or had a statement fail (True when unsure).

    Objects added but not flushed are not counted: the caller discards them (``expunge_all``).
    """
    connection = await session.connection()
    return bool(connection.sync_connection.info.get(_WROTE, True))  # type: ignore[union-attr]
