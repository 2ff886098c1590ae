"""Stormproof's pytest plugin (entry point ``pytest11: stormproof``).

Fixtures, each backed by real services started on free loopback ports (with
pytest-xdist, each worker gets its own):

=========================  =======  ==================================================================
fixture                    scope    gives
=========================  =======  ==================================================================
``stormproof_postgres``    session  :class:`PostgresServer`: an ephemeral PostgreSQL cluster
                                    (``.host``, ``.port``, ``.user``, ``.dsn``, ``.url``,
                                    ``.sqlalchemy_url``; ``.service`` to restart or kill it)
``stormproof_redis``       session  :class:`RedisServer`: an ephemeral Redis (``.url``, ``.host``,
                                    ``.port``, ``.client()``; ``.service``)
``stormproof_database``    test     :class:`Database`: a fresh empty database, dropped after the test
                                    (``.dsn`` and ``.url`` for psycopg, ``.sqlalchemy_url``); call it
                                    (``stormproof_database(template=...)``) for more databases
``reference_app_template`` session  the name of a database migrated to the reference app's schema
``reference_app``          test     :class:`AppFactory`: ``app = reference_app(("session-lock",))``
``reference_app_module``   module   the same, apps living for the whole module
``run_scenario``           test     ``outcome = run_scenario("smoke", duration_s=10)``
=========================  =======  ==================================================================

Options, each both an ini setting (``[pytest]`` / ``[tool.pytest.ini_options]``)
and a command-line flag, the flag winning:

==============================  ==================================  ==============================================
ini                             flag                                meaning
==============================  ==================================  ==============================================
``stormproof_postgres_port``    ``--stormproof-postgres-port``      port of ``stormproof_postgres`` (default: free)
``stormproof_redis_port``       ``--stormproof-redis-port``         port of ``stormproof_redis`` (default: free)
``stormproof_scenario_dir``     ``--stormproof-scenario-dir``       where ``run_scenario`` looks up names first
``stormproof_out``              ``--stormproof-out``                where run directories go (default: tmp_path)
``stormproof_backend``          ``--stormproof-backend``            ``local`` (default) or ``docker``
==============================  ==================================  ==============================================

Factories make more fixtures of the same kinds (``stormproof.harness.pytest_plugin.factories``)::

    from stormproof.harness.pytest_plugin import factories

    second_postgres = factories.postgres_proc(port=None)              # another cluster
    orders_db = factories.database("second_postgres")                 # a database on it
    my_stack = factories.stack(tenants=3, weakenings=("session-lock",))   # a second whole stack
    run_mine = factories.run_scenario(scenario_dir="tests/scenarios")  # another scenario directory
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
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

__all__ = ["AppFactory", "AppUnderTest", "Database", "PostgresServer", "RedisServer", "factories"]

_counter = itertools.count()
TEMPLATE_DB = "stormproof_app_template"

#: name -> (help, default); each is an ini setting ``stormproof_<name>`` and a flag ``--stormproof-<name>``.
_OPTIONS: dict[str, tuple[str, str | None]] = {
    "postgres_port": ("port of the stormproof_postgres cluster (default: a free port)", None),
    "redis_port": ("port of the stormproof_redis server (default: a free port)", None),
    "scenario_dir": ("directory where run_scenario looks up scenario names before the built-in ones", None),
    "out": ("directory where run_scenario's run directories go (default: the test's tmp_path)", None),
    "backend": ("backend of run_scenario: local (default) or docker", "local"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stormproof", "Stormproof services and scenario runs")
    for name, (help_text, default) in _OPTIONS.items():
        parser.addini(f"stormproof_{name}", help_text, default=default)
        group.addoption(f"--stormproof-{name.replace('_', '-')}", dest=f"stormproof_{name}", default=None,
                        help=f"{help_text} [ini: stormproof_{name}]")


def option(config: pytest.Config, name: str) -> str | None:
    """The value of option ``name``: the command-line flag, else the ini setting, else its default."""
    value = config.getoption(f"stormproof_{name}", default=None)
    if value is None:
        value = config.getini(f"stormproof_{name}")
    return str(value) if value not in (None, "") else None


def _port(config: pytest.Config, name: str) -> int | None:
    value = option(config, name)
    return int(value) if value else None


# -- what the fixtures give ----------------------------------------------------------------------
@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL cluster. ``dsn``/``url`` are for psycopg (and libpq);
    ``sqlalchemy_url`` is for SQLAlchemy; all name the ``postgres`` database."""

    service: EphemeralPostgres

    @property
    def host(self) -> str:
        return self.service.host

    @property
    def port(self) -> int:
        return self.service.port

    @property
    def user(self) -> str:
        return self.service.superuser

    @property
    def dsn(self) -> str:
        return self.service.dsn()

    @property
    def url(self) -> str:
        return self.service.url(driver="postgresql")

    @property
    def sqlalchemy_url(self) -> str:
        return self.service.url(driver="postgresql+psycopg")

    def database(self, name: str) -> "Database":
        """A handle on database ``name`` of this cluster (not created here)."""
        return Database(self, name)

    def create_database(self, name: str, *, template: str | None = None) -> "Database":
        self.service.create_database(name, template=template)
        return Database(self, name)

    def drop_database(self, name: str) -> None:
        self.service.drop_database(name)

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        self.service.execute(sql, dbname)


@dataclass(frozen=True)
class Database:
    """One database: ``dsn`` (libpq keywords) and ``url`` (``postgresql://``) both
    work with ``psycopg.connect``; ``sqlalchemy_url`` with ``create_engine``."""

    server: PostgresServer
    name: str

    @property
    def dsn(self) -> str:
        return self.server.service.dsn(self.name)

    @property
    def url(self) -> str:
        return self.server.service.url(self.name, driver="postgresql")

    @property
    def sqlalchemy_url(self) -> str:
        return self.server.service.url(self.name, driver="postgresql+psycopg")

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class RedisServer:
    """A running Redis: ``url`` is database 0; ``url_for(n)`` another database."""

    service: EphemeralRedis

    @property
    def host(self) -> str:
        return self.service.host

    @property
    def port(self) -> int:
        return self.service.port

    @property
    def url(self) -> str:
        return self.service.url(0)

    def url_for(self, db: int) -> str:
        return self.service.url(db)

    def client(self, db: int = 0) -> Any:
        """A redis-py client that fails fast (no retries)."""
        return self.service.client(db)


@dataclass
class _DatabaseFactory:
    """What ``stormproof_database`` gives: the test's own database, and more on call."""

    server: PostgresServer
    template: str | None = None
    created: list[str] = field(default_factory=list)
    _first: Database | None = None

    def __call__(self, template: str | None = None) -> Database:
        name = f"t{os.getpid()}_{next(_counter)}"
        database = self.server.create_database(name, template=template)
        self.created.append(name)
        return database

    @property
    def first(self) -> Database:
        if self._first is None:
            self._first = self(self.template)
        return self._first

    # the test's database, so that ``stormproof_database.url`` just works
    @property
    def name(self) -> str:
        return self.first.name

    @property
    def dsn(self) -> str:
        return self.first.dsn

    @property
    def url(self) -> str:
        return self.first.url

    @property
    def sqlalchemy_url(self) -> str:
        return self.first.sqlalchemy_url

    def __str__(self) -> str:
        return self.url

    def drop_all(self) -> None:
        for name in self.created:
            self.server.drop_database(name)
        self.created.clear()


# -- factories -----------------------------------------------------------------------------------
def _postgres_proc(port: int | None = None, scope: str = "session", port_option: str | None = None,
                   doc: str | None = None) -> Any:
    def fixture(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
        chosen = port if port is not None else (_port(request.config, port_option) if port_option else None)
        with EphemeralPostgres(port=chosen) as service:
            yield PostgresServer(service)

    fixture.__doc__ = doc or "An ephemeral PostgreSQL cluster (:class:`PostgresServer`), stopped and removed after."
    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload]


def _redis_proc(port: int | None = None, scope: str = "session", port_option: str | None = None,
                doc: str | None = None) -> Any:
    def fixture(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
        chosen = port if port is not None else (_port(request.config, port_option) if port_option else None)
        with EphemeralRedis(port=chosen) as service:
            yield RedisServer(service)

    fixture.__doc__ = doc or "An ephemeral Redis (:class:`RedisServer`), stopped and removed after."
    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload]


def _database(postgres_fixture: str = "stormproof_postgres", template: str | None = None,
              scope: str = "function", doc: str | None = None) -> Any:
    def fixture(request: pytest.FixtureRequest) -> Iterator[_DatabaseFactory]:
        made = _DatabaseFactory(request.getfixturevalue(postgres_fixture), template)
        yield made
        made.drop_all()

    fixture.__doc__ = doc or (f"A fresh database on ``{postgres_fixture}`` (``.dsn``, ``.url``, "
                              "``.sqlalchemy_url``), dropped after; call it for more: ``db2 = fixture(template=...)``.")
    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload]


def _stack(scope: str = "session", **config: Any) -> Any:
    """A whole stack of its own (PostgreSQL, Redis, proxies, the app, workers) for ``scope``."""

    def fixture() -> Iterator[LocalStack]:
        with LocalStack(StackConfig(**config)) as stack:
            yield stack

    fixture.__doc__ = f"A LocalStack({config!r}): ``.app_url``, ``.database_url``, ``.tenants``, ``.info()``."
    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload]


def _run_scenario(scenario_dir: str | os.PathLike[str] | None = None, out_dir: str | os.PathLike[str] | None = None,
                  **defaults: Any) -> Any:
    """A ``run_scenario``-like fixture resolving names in ``scenario_dir`` first."""

    def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
        return _scenario_runner(request.config, tmp_path, scenario_dir, out_dir, defaults)

    fixture.__doc__ = f"Run scenarios (names looked up in {scenario_dir!s} first) end to end."
    return pytest.fixture(fixture)


factories = SimpleNamespace(
    postgres_proc=_postgres_proc, redis_proc=_redis_proc, database=_database, stack=_stack,
    run_scenario=_run_scenario,
)


def _scenario_runner(config: pytest.Config, tmp_path: Path, scenario_dir: Any, out_dir: Any,
                     defaults: dict[str, Any]) -> Callable[..., Any]:
    from stormproof.scenarios import Scenario, load_scenario

    from . import runner
    from .runner import RunOptions

    directory = scenario_dir if scenario_dir is not None else option(config, "scenario_dir")
    out = out_dir if out_dir is not None else option(config, "out")
    backend = option(config, "backend") or "local"

    def _run(scenario: "str | Scenario", **options: Any) -> Any:
        if isinstance(scenario, str):
            local = Path(directory) / f"{scenario}.toml" if directory else None
            spec = load_scenario(str(local) if local is not None and local.is_file() else scenario)
        else:
            spec = scenario
        merged = {**defaults, **options}
        merged.setdefault("out_dir", Path(out) if out else tmp_path)
        merged.setdefault("progress", False)
        merged.setdefault("backend", backend)
        return runner.run_scenario(spec, RunOptions(**merged))

    return _run


# -- the fixtures --------------------------------------------------------------------------------
stormproof_postgres = _postgres_proc(port_option="postgres_port", doc="""An ephemeral PostgreSQL cluster for the session (:class:`PostgresServer`).

``.dsn``/``.url`` connect psycopg, ``.sqlalchemy_url`` SQLAlchemy; ``.service`` is the
process (``restart()``, ``process`` for kill/pause faults). Port: ``--stormproof-postgres-port``.""")

stormproof_redis = _redis_proc(port_option="redis_port", doc="""An ephemeral Redis for the session (:class:`RedisServer`): ``.url`` (database 0),
``.url_for(n)``, ``.client()``; ``.service`` is the process. Port: ``--stormproof-redis-port``.""")

stormproof_database = _database("stormproof_postgres", doc="""A fresh, empty database for this test, dropped after it.

``stormproof_database.dsn`` / ``.url`` connect psycopg; ``.sqlalchemy_url`` SQLAlchemy.
Call it for more databases: ``other = stormproof_database(template="my_template")``.""")


@pytest.fixture(scope="session")
def reference_app_template(stormproof_postgres: PostgresServer) -> str:
    """The name of a database migrated to the reference app's schema once per session (to clone)."""
    from stormproof.reference_app.db import migrate

    stormproof_postgres.create_database(TEMPLATE_DB)
    migrate(stormproof_postgres.database(TEMPLATE_DB).sqlalchemy_url)
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
        """SQLAlchemy URL of the app's database (``database_dsn`` for psycopg)."""
        return self.stack.database_url

    @property
    def database_dsn(self) -> str:
        """libpq URL of the app's database, for psycopg."""
        return self.stack.check_dsn

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


#: The Redis databases the stacks of this process may take (the test Redis has 64): 0 to 7 and 60 to 63 are left to
#: tests that pick one by hand (``stormproof_redis.url_for(61)``).
_APP_REDIS_DBS = range(8, 60)
_redis_db = itertools.count()
#: Databases held by the stacks of this process that are running (or stopping). Two running apps on one database
#: share a Celery queue, each worker taking the other's tasks, and the second's start flushes the first's: a
#: counter taken modulo 64 gave the 65th app of a module the first's database while it still ran, and its tasks
#: never settled (three Shunya tests of test_weakenings.py, once the module started more than 64 apps).
_redis_dbs_held: set[int] = set()
_redis_dbs_lock = threading.Lock()


def _take_redis_db() -> int:
    with _redis_dbs_lock:
        for _ in _APP_REDIS_DBS:
            db = _APP_REDIS_DBS[next(_redis_db) % len(_APP_REDIS_DBS)]
            if db not in _redis_dbs_held:
                _redis_dbs_held.add(db)
                return db
    raise RuntimeError(f"every Redis database of the test Redis kept for apps ({len(_APP_REDIS_DBS)}) is held by a "
                       "running app of this process: stop apps a test no longer needs (AppFactory.stop)")


def _stop_stack(stack: LocalStack) -> None:
    """Stop ``stack``, then give its Redis database back (not before: a new app's start flushes it)."""
    try:
        stack.stop()
    finally:
        with _redis_dbs_lock:
            _redis_dbs_held.discard(stack.redis_db)


class AppFactory:
    """Starts reference stacks on clones of one migrated template; :meth:`close` stops them all."""

    def __init__(self, postgres: PostgresServer | EphemeralPostgres, redis: RedisServer | EphemeralRedis,
                 template: str) -> None:
        self._postgres = getattr(postgres, "service", postgres)
        self._redis = getattr(redis, "service", redis)
        self._template = template
        self._started: list[LocalStack] = []
        self._stopping: list[Future[None]] = []
        self._stopper: ThreadPoolExecutor | None = None

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
        retention_beat_s: int = 0,
        shunya: dict[str, Any] | None = None,
        proxies: bool = False,
        seed_consent: bool = True,
        seed_at_risk: bool = False,
    ) -> AppUnderTest:
        """Proxies are off by default here: most tests fault nothing and start faster without them.

        ``retention_beat_s``: the first task worker runs the app's beat, the periodic retention every that many
        seconds (``StackConfig.retention_beat_s``)."""
        config = StackConfig(
            weakenings=tuple(weakenings), app_workers=workers, task_workers=task_workers,
            worker_concurrency=worker_concurrency, retention_beat_s=retention_beat_s, tenants=tenants, reps=reps, appointments=appointments,
            shunya=shunya, env=dict(env or {}), proxies=proxies, seed_consent=seed_consent,
            seed_at_risk=seed_at_risk,
        )
        stack = LocalStack(
            config, postgres=self._postgres, redis=self._redis,
            redis_db=_take_redis_db(), template=self._template,
        )
        self._started.append(stack)
        stack.start()
        return AppUnderTest(stack)

    def stop(self, app: AppUnderTest, *, wait: bool = True) -> None:
        """Stop one app now rather than at :meth:`close`: an idle app still runs its outbox relay and the
        Shunya stub its loops (measured about 4% of a core each, with PostgreSQL's share on top), so a module
        that keeps one app per weakening for its whole length (sixty) had them take the machine.

        With ``wait=False`` the stop runs on a background thread (2 to 3 s of waiting for processes to exit,
        which the test that evicted the app need not spend); :meth:`close` waits for it and raises its error.
        """
        if app.stack not in self._started:
            return
        self._started.remove(app.stack)
        if wait:
            _stop_stack(app.stack)
            return
        if self._stopper is None:
            self._stopper = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stack-stop")
        self._stopping.append(self._stopper.submit(_stop_stack, app.stack))

    def close(self) -> None:
        """Stop every stack, several at once: a module that started one app per weakening (about forty)
        spent 41 s of the suite stopping them one after the other. Every stack is stopped even when one
        fails to stop; the first failure is raised after."""
        stacks, self._started = list(reversed(self._started)), []
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="stack-stop") as pool:
            outcomes = [pool.submit(_stop_stack, stack) for stack in stacks]
        outcomes += self._stopping  # the stops begun by stop(wait=False): wait for each
        self._stopping = []
        if self._stopper is not None:
            self._stopper.shutdown(wait=True)
            self._stopper = None
        errors = [error for outcome in outcomes if (error := outcome.exception()) is not None]
        if errors:
            raise errors[0]


@pytest.fixture
def reference_app(
    stormproof_postgres: PostgresServer, stormproof_redis: RedisServer, reference_app_template: str
) -> Iterator[AppFactory]:
    """Start reference apps for one test: ``app = reference_app(("session-lock",), env={...})``."""
    factory = AppFactory(stormproof_postgres, stormproof_redis, reference_app_template)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def reference_app_module(
    stormproof_postgres: PostgresServer, stormproof_redis: RedisServer, reference_app_template: str
) -> Iterator[AppFactory]:
    """Like ``reference_app``, but the apps live for the whole test module."""
    factory = AppFactory(stormproof_postgres, stormproof_redis, reference_app_template)
    yield factory
    factory.close()


@pytest.fixture
def run_scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
    """Run a scenario end to end inside a test: ``outcome = run_scenario("smoke", duration_s=10)``.

    Takes a name (looked up in ``--stormproof-scenario-dir`` first, then the
    built-in ones), a path to a TOML file or a ``Scenario``, plus any
    :class:`stormproof.harness.runner.RunOptions` field; the run directory goes under
    ``--stormproof-out`` or the test's ``tmp_path``. The outcome has
    ``verdict``, ``exit_code``, ``result`` (verdicts, stats) and ``run_dir``.
    """
    return _scenario_runner(request.config, tmp_path, None, None, {})
