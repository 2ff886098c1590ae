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
  weakenings, and stops it after the test (or the module);
* ``run_scenario``: runs a scenario end to end and returns its outcome.

With pytest-xdist each worker gets its own services.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .stack import (
    CeleryWorkerProcess,
    EphemeralPostgres,
    EphemeralRedis,
    LocalStack,
    ReferenceAppProcess,
    StackConfig,
)
from .stack.local import WEBHOOK_SECRET

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
    """A running reference app with its own database, Redis db number and seeded tenants.

    With task workers, also the Shunya stub (webhooks pointed at the app) and
    Celery worker processes; app and workers share one Prometheus
    multiprocess directory, so ``/metrics`` counts the workers' work too.
    """

    stack: LocalStack

    @property
    def url(self) -> str:
        return self.stack.app_url

    @property
    def database_url(self) -> str:
        return self.stack.database_url

    @property
    def redis_url(self) -> str:
        return self.stack.redis_url

    @property
    def weakenings(self) -> frozenset[str]:
        return frozenset(self.stack.config.weakenings)

    @property
    def tenants(self) -> list[Any]:
        return self.stack.tenants

    @property
    def process(self) -> ReferenceAppProcess | None:
        return self.stack.app

    @property
    def workers(self) -> list[CeleryWorkerProcess]:
        return self.stack.workers

    @property
    def webhook_secret(self) -> str:
        return WEBHOOK_SECRET

    @property
    def shunya_url(self) -> str:
        assert self.stack.shunya is not None, "start the app with shunya={...} or task_workers>0"
        return self.stack.shunya.url


_redis_db = itertools.count(1)


class AppFactory:
    """Starts reference stacks on clones of one migrated template; :meth:`close` stops them all."""

    def __init__(self, postgres: EphemeralPostgres, redis: EphemeralRedis, template: str) -> None:
        self._postgres = postgres
        self._redis = redis
        self._template = template
        self._started: list[LocalStack] = []

    def __call__(
        self,
        weakenings: tuple[str, ...] | list[str] = (),
        *,
        tenants: int = 2,
        reps: int = 3,
        appointments: int = 3,
        env: dict[str, str] | None = None,
        workers: int = 1,
        task_workers: int = 0,
        worker_concurrency: int = 2,
        shunya: dict[str, Any] | None = None,
        proxies: bool = False,
        seed_consent: bool = True,
        seed_at_risk: bool = False,
    ) -> AppUnderTest:
        """Proxies are off by default here: most tests fault nothing and start faster without them."""
        config = StackConfig(
            weakenings=tuple(weakenings), app_workers=workers, task_workers=task_workers,
            worker_concurrency=worker_concurrency, tenants=tenants, reps=reps, appointments=appointments,
            shunya=shunya, env=dict(env or {}), proxies=proxies, seed_consent=seed_consent,
            seed_at_risk=seed_at_risk,
        )
        stack = LocalStack(
            config, postgres=self._postgres, redis=self._redis,
            redis_db=next(_redis_db) % 64, template=self._template,
        )
        self._started.append(stack)
        stack.start()
        return AppUnderTest(stack)

    def close(self) -> None:
        for stack in reversed(self._started):
            stack.stop()
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


@pytest.fixture
def run_scenario(tmp_path: Any) -> Callable[..., Any]:
    """Run a scenario end to end inside a test: ``outcome = run_scenario("smoke", duration_s=10)``.

    Takes a built-in name, a path to a TOML file or a ``Scenario``, plus any
    :class:`harness.runner.RunOptions` field; the run directory goes under the
    test's ``tmp_path``. The outcome has ``verdict``, ``exit_code``,
    ``result`` (verdicts, stats) and ``run_dir`` (report.html and the rest).
    """
    from scenarios import Scenario, load_scenario

    from .runner import RunOptions
    from .runner import run_scenario as run

    def _run(scenario: "str | Scenario", **options: Any) -> Any:
        spec = load_scenario(scenario) if isinstance(scenario, str) else scenario
        options.setdefault("out_dir", tmp_path)
        options.setdefault("progress", False)
        return run(spec, RunOptions(**options))

    return _run
