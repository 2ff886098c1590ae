"""Engines, sessions and migrations.

The app uses SQLAlchemy's asyncio engine on psycopg 3; migrations and the
schema guards run on a short-lived sync engine, before the app serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, pool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from .models.guards import apply_guards
from .settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["make_engine", "make_sessionmaker", "migrate", "prepare_schema", "session_scope"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def make_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    from .services.unit_of_work import track_writes

    engine = create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_timeout=10,
    )
    track_writes(engine.sync_engine)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


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
    """Apply the weakenings that live in the schema (dropped or restored guards)."""
    engine = create_engine(_sync_url(settings.database_url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            apply_guards(conn, settings.weakenings)
    finally:
        engine.dispose()
