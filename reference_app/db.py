"""Engines, sessions and migrations.

The app uses SQLAlchemy's asyncio engine on psycopg 3; migrations and the
schema guards run on a short-lived sync engine, before the app serves.
"""

from __future__ import annotations

import select as _select
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, exc, pool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from .models.guards import apply_guards
from .settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["make_engine", "make_sessionmaker", "make_read_sessionmaker", "migrate", "prepare_schema", "session_scope"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def make_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    """The pool, with a liveness check at checkout that costs no round trip (see :func:`_drop_dead`)."""
    from .services.unit_of_work import track_writes

    engine = create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=10,
    )
    event.listen(engine.sync_engine.pool, "checkout", _drop_dead)
    track_writes(engine.sync_engine)
    return engine


def _drop_dead(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Refuse a pooled connection the server has closed, before a request uses it.

    ``pool_pre_ping`` did this with a ``SELECT 1`` on every checkout: one more
    round trip on every request. An idle connection has nothing to read; a
    server that restarted, a backend that was terminated or a reset link
    (a PostgreSQL restart, a ``reset_peer`` fault) leaves its socket readable
    (the last message, EOF or an error) or the connection marked broken. The pool
    then drops it and checks out another (SQLAlchemy's DisconnectionError
    protocol). A link that is silent but dead is caught by neither this nor a
    ping short of its timeout.
    """
    conn = getattr(dbapi_connection, "_connection", dbapi_connection)
    if conn.closed or conn.broken:
        raise exc.DisconnectionError("connection closed")
    try:
        fd = conn.pgconn.socket
    except Exception:  # noqa: BLE001 - psycopg raises when the connection has no socket any more
        raise exc.DisconnectionError("connection has no socket") from None
    poller = _select.poll()
    poller.register(fd, _select.POLLIN | _select.POLLERR | _select.POLLHUP)
    if poller.poll(0):
        raise exc.DisconnectionError("the server closed the connection, or sent while idle")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads that need no transaction: each statement on its own (autocommit).

    A read in a session of :func:`make_sessionmaker` costs a BEGIN before its
    SELECT and a ROLLBACK after it: two round trips for nothing when the read is
    one statement, or a few that need not share a snapshot. Never write through these.
    """
    return async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        yield session


def _sync_url(url: str) -> str:
    return url.replace("+asyncpg", "+psycopg")


def alembic_config(database_url: str) -> "Config":
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", _sync_url(database_url).replace("%", "%%"))
    return cfg


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def prepare_schema(settings: Settings) -> None:
    """Apply the weakenings that live in the schema (dropped or restored guards).

    With ``database_wait_ms``, a database that refuses connections (not started yet, or not
    created yet) is tried again until the wait runs out; any other error fails the start at once.
    """
    engine = create_engine(_sync_url(settings.database_url), poolclass=pool.NullPool)
    deadline = time.monotonic() + settings.database_wait_ms / 1000
    try:
        while True:
            try:
                with engine.begin() as conn:
                    apply_guards(conn, settings.weakenings)
                return
            except exc.OperationalError:
                # Connection refused, or "database ... does not exist": the launcher has not made it yet.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
    finally:
        engine.dispose()
