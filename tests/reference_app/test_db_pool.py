"""The app's connection pool: a connection the server closed is never handed to a request.

``make_engine`` dropped ``pool_pre_ping`` (a ``SELECT 1`` per checkout) for a
check of the idle socket; these prove the check catches what the ping caught:
a backend terminated while the connection sat in the pool (as a PostgreSQL
restart or a reset link leaves it). Also: the autocommit read sessions send no
transaction, and the write tracking the idempotency protocol relies on.
"""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy import text

from stormproof.reference_app.db import make_engine, make_read_sessionmaker, make_sessionmaker
from stormproof.reference_app.services.unit_of_work import wrote_in_transaction
from stormproof.reference_app.settings import Settings


def _settings(database) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(database_url=database.sqlalchemy_url, redis_url="redis://127.0.0.1:1/0", db_pool_size=1,
                    db_max_overflow=0)


def test_a_connection_whose_backend_was_terminated_is_replaced_at_checkout(stormproof_database) -> None:
    async def scenario() -> tuple[int, int, int]:
        engine = make_engine(_settings(stormproof_database))
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as session:
                first = int(await session.scalar(text("SELECT pg_backend_pid()")))
            # The pool keeps that one connection; end its backend behind the pool's back.
            with psycopg.connect(stormproof_database.dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            await asyncio.sleep(0.2)  # the server's goodbye reaches the idle socket
            async with sessions() as session:
                second = int(await session.scalar(text("SELECT pg_backend_pid()")))
                answer = int(await session.scalar(text("SELECT 41 + 1")))
            return first, second, answer
        finally:
            await engine.dispose()

    first, second, answer = asyncio.run(scenario())
    assert second != first, "the dead connection was handed out again"
    assert answer == 42


def test_read_sessions_run_outside_a_transaction(stormproof_database) -> None:
    async def scenario() -> tuple[str, str]:
        engine = make_engine(_settings(stormproof_database))
        try:
            async with make_read_sessionmaker(engine)() as session:
                read = str(await session.scalar(text("SELECT coalesce(pg_current_xact_id_if_assigned()::text, "
                                                      "'none') || ':' || (now() = statement_timestamp())::text")))
            async with make_sessionmaker(engine)() as session, session.begin():
                await session.execute(text("SELECT pg_sleep(0.01)"))
                write = str((await session.scalar(text("SELECT (now() = statement_timestamp())::text"))))
            return read, write
        finally:
            await engine.dispose()

    read, write = asyncio.run(scenario())
    assert read == "none:true", "a read session's statement ran as its own transaction"
    assert write == "false", "a write session's statements share one transaction"


def test_writes_are_tracked_per_transaction(stormproof_database) -> None:
    async def scenario() -> list[bool]:
        engine = make_engine(_settings(stormproof_database))
        sessions = make_sessionmaker(engine)
        seen = []
        try:
            async with sessions() as session, session.begin():
                await session.execute(text("CREATE TEMP TABLE t (x int)"))  # DDL: not counted, and not used below
                await session.execute(text("SELECT 1"))
                seen.append(await wrote_in_transaction(session))
                await session.execute(text("INSERT INTO t VALUES (1)"))
                seen.append(await wrote_in_transaction(session))
            async with sessions() as session, session.begin():  # the same pooled connection, a new transaction
                await session.execute(text("SELECT 1"))
                seen.append(await wrote_in_transaction(session))
        finally:
            await engine.dispose()
        return seen

    assert asyncio.run(scenario()) == [False, True, False]


def test_a_deadlock_victim_is_run_again_not_answered_500(stormproof_database) -> None:
    """Two writes locking two rows in opposite orders deadlock; PostgreSQL fails one (40P01) and the app
    runs that one again, so both complete. Without the rerun the victim's request answered 500 with every
    dependency up (CI's db-latency all-on try, 2026-12-05: start and assign, rep and appointment rows)."""
    from uuid import uuid4

    from stormproof.reference_app.obs.metrics import METRICS
    from stormproof.reference_app.services.unit_of_work import UnitOfWork, run_in_transaction

    table = f"deadlock_{uuid4().hex[:12]}"
    reruns = METRICS.transactions_rerun.labels("40P01")

    async def scenario() -> tuple[list[int], list[int]]:
        engine = make_engine(Settings(database_url=stormproof_database.sqlalchemy_url,
                                      redis_url="redis://127.0.0.1:1/0", db_pool_size=2, db_max_overflow=0))
        sessions = make_sessionmaker(engine)
        both_hold_one = asyncio.Barrier(2)
        runs = [0, 0]
        try:
            async with sessions() as session, session.begin():
                await session.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, v int NOT NULL)"))
                await session.execute(text(f"INSERT INTO {table} VALUES (1, 0), (2, 0)"))

            def write(which: int, first: int, second: int):  # type: ignore[no-untyped-def]
                async def operation(uow: UnitOfWork) -> None:
                    runs[which] += 1
                    await uow.session.execute(text(f"UPDATE {table} SET v = v + 1 WHERE id = {first}"))
                    if runs[which] == 1:
                        await both_hold_one.wait()  # each holds its first row: the second locks close a cycle
                    await uow.session.execute(text(f"UPDATE {table} SET v = v + 1 WHERE id = {second}"))
                return operation

            await asyncio.gather(run_in_transaction(sessions, write(0, 1, 2)),
                                 run_in_transaction(sessions, write(1, 2, 1)))
            async with sessions() as session:
                values = [int(v) for v in (await session.execute(text(f"SELECT v FROM {table} ORDER BY id"))).scalars()]
                await session.execute(text(f"DROP TABLE {table}"))
                await session.commit()
            return runs, values
        finally:
            await engine.dispose()

    before = reruns._value.get()
    runs, values = asyncio.run(scenario())
    assert sorted(runs) == [1, 2], f"one of the two writes is the deadlock's victim and runs again: {runs}"
    assert values == [2, 2], "both writes took effect once each (the victim's first run was rolled back)"
    assert reruns._value.get() == before + 1, "the rerun is counted in db_transactions_rerun_total"


def test_other_database_errors_are_not_run_again(stormproof_database) -> None:
    """Only a victim's SQLSTATE reruns: a constraint violation is an answer (or a bug), run once."""
    from sqlalchemy.exc import IntegrityError

    from stormproof.reference_app.services.unit_of_work import UnitOfWork, run_in_transaction

    async def scenario() -> int:
        engine = make_engine(_settings(stormproof_database))
        runs = 0

        async def operation(uow: UnitOfWork) -> None:
            nonlocal runs
            runs += 1
            await uow.session.execute(text("CREATE TEMP TABLE once (id int PRIMARY KEY)"))
            await uow.session.execute(text("INSERT INTO once VALUES (1), (1)"))

        try:
            try:
                await run_in_transaction(make_sessionmaker(engine), operation)
            except IntegrityError:
                return runs
            raise AssertionError("the duplicate key was not raised")
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == 1
