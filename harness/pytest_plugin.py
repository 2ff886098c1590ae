"""Stormproof's pytest plugin (entry point ``pytest11: stormproof``).

Fixtures, each backed by real services started on free loopback ports:

* ``stormproof_postgres``: an ephemeral PostgreSQL cluster for the session;
* ``stormproof_redis``: an ephemeral Redis for the session;
* ``stormproof_database``: a factory making a fresh database (optionally from a
  template) that is dropped after the test;
* ``reference_app_template``: a database migrated to the reference app's
  schema once per session, for cloning;
* ``reference_app`` / ``reference_app_module``: a factory that starts the
  reference app (uvicorn) on a fresh migrated, seeded database with the given
  weakenings, and stops it after the test (or the module).

With pytest-xdist each worker gets its own services.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .stack import EphemeralPostgres, EphemeralRedis, ReferenceAppProcess

__all__ = ["AppFactory", "AppUnderTest"]

_counter = itertools.count()
TEMPLATE_DB = "stormproof_app_template"


@pytest.fixture(scope="session")
def stormproof_postgres() -> Iterator[EphemeralPostgres]:
    with EphemeralPostgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def stormproof_redis() -> Iterator[EphemeralRedis]:
    with EphemeralRedis() as server:
        yield server


@pytest.fixture
def stormproof_database(stormproof_postgres: EphemeralPostgres) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"t{os.getpid()}_{next(_counter)}"
        url = stormproof_postgres.create_database(name, template=template)
        created.append(name)
        return url

    yield make
    for name in created:
        stormproof_postgres.drop_database(name)


@pytest.fixture(scope="session")
def reference_app_template(stormproof_postgres: EphemeralPostgres) -> str:
    from reference_app.db import migrate

    url = stormproof_postgres.create_database(TEMPLATE_DB)
    migrate(url)
    return TEMPLATE_DB


@dataclass
class AppUnderTest:
    """A running reference app with its own database, Redis db number and seeded tenants."""

    url: str
    database_url: str
    redis_url: str
    weakenings: frozenset[str]
    tenants: list[Any] = field(default_factory=list)
    process: ReferenceAppProcess | None = None


_redis_db = itertools.count(1)


class AppFactory:
    """Starts reference apps on fresh migrated databases; :meth:`close` stops them all."""

    def __init__(self, postgres: EphemeralPostgres, redis: EphemeralRedis, template: str) -> None:
        self._postgres = postgres
        self._redis = redis
        self._template = template
        self._started: list[tuple[ReferenceAppProcess, str]] = []

    def __call__(
        self,
        weakenings: tuple[str, ...] | list[str] = (),
        *,
        tenants: int = 2,
        reps: int = 3,
        appointments: int = 3,
        env: dict[str, str] | None = None,
        workers: int = 1,
    ) -> AppUnderTest:
        from reference_app.seed import seed
        from reference_app.settings import Settings

        name = f"app{os.getpid()}_{next(_counter)}"
        database_url = self._postgres.create_database(name, template=self._template)
        db_number = next(_redis_db) % 64
        self._redis.client(db_number).flushdb()
        redis_url = self._redis.url(db_number)
        settings = Settings(database_url=database_url, redis_url=redis_url, environment="test")
        seeded = seed(settings, tenants=tenants, reps=reps, appointments=appointments)
        proc = ReferenceAppProcess(
            database_url=database_url, redis_url=redis_url, weakenings=weakenings, env=env, workers=workers
        )
        self._started.append((proc, name))
        proc.start()
        return AppUnderTest(
            url=proc.url,
            database_url=database_url,
            redis_url=redis_url,
            weakenings=frozenset(weakenings),
            tenants=seeded,
            process=proc,
        )

    def close(self) -> None:
        for proc, name in self._started:
            proc.stop()
            self._postgres.drop_database(name)
        self._started.clear()


@pytest.fixture
def reference_app(
    stormproof_postgres: EphemeralPostgres, stormproof_redis: EphemeralRedis, reference_app_template: str
) -> Iterator[AppFactory]:
    """Start reference apps for one test: ``app = reference_app(("session-lock",), env={...})``."""
    factory = AppFactory(stormproof_postgres, stormproof_redis, reference_app_template)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def reference_app_module(
    stormproof_postgres: EphemeralPostgres, stormproof_redis: EphemeralRedis, reference_app_template: str
) -> Iterator[AppFactory]:
    """Like ``reference_app``, but the apps live for the whole test module."""
    factory = AppFactory(stormproof_postgres, stormproof_redis, reference_app_template)
    yield factory
    factory.close()
