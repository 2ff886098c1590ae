"""The whole reference system as local processes: PostgreSQL, Redis, the fault proxy, the Shunya stub,
the app and its workers, every link through a proxy (see :mod:`stormproof.harness.stack.proxy`).

One class composes the launchers so that ``stormproof up``, the pytest plugin
and scenario runs bring a system up the same way. PostgreSQL and Redis may be
shared (tests clone one migrated template per test and take their own Redis
database number); otherwise the stack starts its own.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from .app import ReferenceAppProcess
from .ports import free_port
from .postgres import EphemeralPostgres, Prepared
from .proxy import FaultProxyProcess
from .recipe import Targets, app_env, recipe
from .redis import EphemeralRedis
from .rundir import make_run_dir, remove_run_dir
from .shunya import ShunyaStubProcess
from .worker import CeleryWorkerProcess, PoolProcess

from stormproof.reference_app.settings import DEV_JWT_SECRET, default_app_workers

__all__ = ["LocalStack", "StackConfig", "WEBHOOK_SECRET"]

WEBHOOK_SECRET = "stormproof-local-webhook-secret"
_names = itertools.count()
log = logging.getLogger(__name__)


#: The migrated database a prepared cluster holds, to clone the app's databases from.
SCHEMA_DB = "stormproof_schema"


def schema_prepared() -> Prepared:
    """A cluster prepared with the reference app's schema, keyed by a digest of its migrations."""
    # Found without importing the app's modules (SQLAlchemy: about 0.9 s before the app's launch).
    spec = importlib.util.find_spec("stormproof.reference_app")
    assert spec is not None and spec.submodule_search_locations
    migrations = Path(next(iter(spec.submodule_search_locations))) / "migrations"
    digest = hashlib.sha256()
    for path in sorted(migrations.rglob("*.py")):
        digest.update(str(path.relative_to(migrations)).encode() + b"\0" + path.read_bytes())

    def prepare(postgres: EphemeralPostgres) -> None:
        from stormproof.reference_app.db import migrate

        postgres.create_database(SCHEMA_DB)
        migrate(postgres.url(SCHEMA_DB))

    return Prepared(key=f"reference-app-schema-{digest.hexdigest()}", prepare=prepare)


class _Steps:
    """Logs when each step of a start or stop ended (the run's stormproof.log says where the time goes).

    Steps run concurrently, so each is stamped with the time since the first, not since the previous one.
    """

    def __init__(self) -> None:
        self.began = time.monotonic()

    def done(self, step: str) -> None:
        log.info("stack: %s at +%.2f s", step, time.monotonic() - self.began)


@dataclass(frozen=True)
class StackConfig:
    weakenings: tuple[str, ...] = ()
    #: uvicorn processes of the app: the cores available (or ``STORMPROOF_APP_WORKERS``), as the app's own default.
    app_workers: int = default_app_workers()
    task_workers: int = 1
    worker_concurrency: int = 2
    #: Above 0: the first task worker also runs the app's beat, which sends the periodic retention of every
    #: tenant (plan F1) every this many seconds; 0: no beat (retention runs only when a request asks).
    retention_beat_s: int = 0
    tenants: int = 2
    reps: int = 3
    appointments: int = 5
    #: Seed a recording and an analysis consent for every appointment (plan F3).
    seed_consent: bool = True
    #: Seed data that puts the plan's promises at risk (overlaps, an active session, no consent, a
    #: deleted id: ``stormproof.reference_app.seed``); runs want it, the pytest fixture's app tests do not.
    seed_at_risk: bool = True
    #: Seed tenants at the start (``tenants`` and the rest). A replay seeds fresh tenants on each
    #: attempt and never uses these, so it turns this off (about 0.3 s of a written test's start).
    seed_tenants: bool = True
    #: Start the Shunya stub (always, when there are task workers), with this initial config.
    shunya: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: Route every link through the fault proxy (see :data:`stormproof.harness.stack.proxy.LINKS`).
    proxies: bool = True
    #: Run this command instead of the reference app: the user's own backend implementing the contract.
    app_command: tuple[str, ...] | None = None
    app_ready_path: str = "/readyz"


class LocalStack:
    def __init__(
        self,
        config: StackConfig,
        *,
        postgres: EphemeralPostgres | None = None,
        redis: EphemeralRedis | None = None,
        redis_db: int = 0,
        template: str | None = None,
    ) -> None:
        self.config = config
        self._own_postgres = postgres is None
        self._own_redis = redis is None
        self.postgres = postgres
        self.redis = redis
        self.redis_db = redis_db
        self.template = template
        self.database_name = f"stormproof_{os.getpid()}_{next(_names)}"
        self.base_dir: Path | None = None
        self.app: ReferenceAppProcess | None = None
        self.shunya: ShunyaStubProcess | None = None
        self.workers: list[CeleryWorkerProcess] = []
        self.proxy: FaultProxyProcess | None = None
        #: Proxy name -> the port it listens on.
        self.links: dict[str, int] = {}
        self.tenants: list[Any] = []
        self.ready_after_s = 0.0
        self._services: list[Any] = []
        #: The migrated database an early-launched app's database is cloned from, when no template was given.
        self._schema_db: str | None = None

    #: The key that signs the seeded tenants' tokens, and that the app verifies them with.
    jwt_secret = os.environ.get("STORMPROOF_JWT_SECRET") or DEV_JWT_SECRET
    webhook_secret = WEBHOOK_SECRET

    @property
    def database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url(self.database_name)

    # -- what a run needs from the system under test (shared with ExternalSystem) ----
    @property
    def metrics_url(self) -> str:
        """The app's /metrics, directly (not through a proxy a fault may have cut)."""
        assert self.app is not None
        return f"{self.app.url}/metrics"

    @property
    def check_dsn(self) -> str:
        """Where checkers read the final state: PostgreSQL's own port, never the proxy."""
        assert self.postgres is not None
        return self.postgres.dsn(self.database_name)

    @property
    def shunya_admin_url(self) -> str | None:
        return self.shunya.url if self.shunya else None

    @property
    def log_dir(self) -> Path | None:
        return self.base_dir

    @classmethod
    def targets(cls, config: StackConfig) -> Targets:
        """The fault targets a stack with ``config`` offers, known before it starts (the recipe's)."""
        return recipe(config).targets()

    def fault_targets(self) -> dict[str, Any]:
        """Processes that process faults may act on, by the recipe's names (see :meth:`targets`)."""
        targets: dict[str, Any] = {}
        if self.postgres is not None and self.postgres.process is not None:
            targets["postgres"] = self.postgres.process
        if self.redis is not None and self.redis.process is not None:
            targets["redis"] = self.redis.process
        # The services that take seconds to serve again restart through their readiness check
        # (see stack.readiness.RestartsReady), as a container restarts on the docker backend.
        if self.app is not None and self.app.process is not None:
            targets["app"] = self.app.fault_target()
        if self.shunya is not None and self.shunya.process is not None:
            targets["shunya"] = self.shunya.fault_target()
        for worker in self.workers:
            if worker.process is not None:
                targets[worker.name] = worker.fault_target()
                targets[f"{worker.name}-pool"] = PoolProcess(worker)
        return targets

    @property
    def redis_url(self) -> str:
        assert self.redis is not None
        return self.redis.url(self.redis_db)

    def start(self) -> "LocalStack":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        """Start every service, each as soon as what it needs is up.

        Three lanes run at once: PostgreSQL (database, schema, seed), Redis,
        and the fault proxy followed by the Shunya stub (they need only ports,
        chosen up front). The app and the task workers, which need the
        database, Redis and the links, then start together. Each service is
        in ``_services`` before it starts, so a failure anywhere stops all.

        The reference app is launched early and imports its modules (2 to 4 s)
        while the lanes run; it waits for its database (see
        :meth:`_launch_app_early`): without the fault proxy its addresses are
        known before anything starts, so it is launched first; with the proxy,
        as soon as the links are made. Its database appears, cloned whole from
        the migrated schema, only after Redis is flushed, so the app never sees
        a half-made schema or writes to Redis before the flush.
        """
        started = time.monotonic()
        steps = _Steps()
        cfg = self.config
        self.base_dir = make_run_dir("stack")
        plan = recipe(cfg)
        early = cfg.app_command is None
        own_postgres = self.postgres is None
        if self.postgres is None:
            # Launched early, the app waits on PostgreSQL's start: a cluster copied with its schema made
            # (``Prepared``) spares initdb and the migration, CPU that the app's imports also need.
            self.postgres = EphemeralPostgres(base_dir=self.base_dir / "postgres",
                                              prepared=schema_prepared() if early and self.template is None else None)
        own_redis = self.redis is None
        # A cluster of our own copied whole with the migrated schema, and a Redis of our own (empty, nothing to
        # flush): the app uses the schema's database itself. Nobody else clones it, and the copy dies with
        # the stack; cloning it cost a CREATE DATABASE (0.15 s idle, 2 s seen at load 8) before the app's wait.
        # A cluster prepared here (no cache yet) makes that database while it serves: the app gets a clone.
        use_schema = own_postgres and own_redis and self.postgres.prepared is not None \
            and self.postgres.starts_from_copy()
        if use_schema:
            self.database_name = SCHEMA_DB
        if self.redis is None:
            self.redis = EphemeralRedis(base_dir=self.base_dir / "redis")
        metrics_dir = self.base_dir / "prometheus"
        metrics_dir.mkdir()
        app_port, stub_port = free_port(), free_port()
        with_stub = plan.has("shunya")
        upstreams = {"postgres": self.postgres.port, "redis": self.redis.port, "app": app_port, "shunya": stub_port}
        if plan.has("proxy"):
            self.proxy = FaultProxyProcess(base_dir=self.base_dir)
            self._services.append(self.proxy)
        if with_stub:
            self.shunya = ShunyaStubProcess(
                webhook_url="",  # set once the webhook link's port is known
                webhook_secret=WEBHOOK_SECRET,
                config=cfg.shunya or {},
                port=stub_port,
                base_dir=self.base_dir,
            )
            self._services.append(self.shunya)
        ports = (self.postgres.port, self.redis.port)
        launch = None
        if early:
            def launch() -> None:
                database_url, redis_url, shunya_port = self._client_addresses(stub_port)
                self._launch_app_early(database_url, redis_url, app_port, shunya_port if with_stub else None,
                                       metrics_dir, steps)
            if self.proxy is None:
                launch()
                launch = None
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="stack-start") as pool:
            database = pool.submit(self._start_database, own_postgres, steps, early)
            broker = pool.submit(self._start_redis, own_redis, steps)
            edge = pool.submit(self._start_edge, plan, upstreams, app_port, steps, launch)
            for future in (database, broker, edge):
                future.result()
        if not use_schema:
            self.redis.client(self.redis_db).flushdb()
        if early:
            if not use_schema:
                self.postgres.create_database(self.database_name, template=self.template)
                steps.done("database created from the migrated schema")
            if (self.postgres.port, self.redis.port) != ports and self.proxy is None:
                # A port taken meanwhile was picked again: the launched app points at the old one.
                assert self.app is not None
                self._services.remove(self.app)
                self.app.stop()
                self.app = None
        if cfg.seed_tenants:
            self._seed(steps)
        database_url, redis_url, shunya_port = self._client_addresses(stub_port)
        env = self._app_env(database_url, redis_url, shunya_port if with_stub else None, metrics_dir)
        if self.app is not None:
            self._start_workers_and_app(plan, steps, started, database_url, redis_url, env)
            return

        self.app = ReferenceAppProcess(
            database_url=database_url, redis_url=redis_url, weakenings=cfg.weakenings, env=env,
            workers=cfg.app_workers, port=app_port, base_dir=self.base_dir,
            command=cfg.app_command, ready_path=cfg.app_ready_path,
        )
        self._services.append(self.app)
        self._start_workers_and_app(plan, steps, started, database_url, redis_url, env)

    def _app_env(self, database_url: str, redis_url: str, shunya_port: int | None, metrics_dir: Path) -> dict[str, str]:
        return app_env(
            self.config, database_url=database_url, redis_url=redis_url,
            shunya_url=f"http://127.0.0.1:{shunya_port}" if shunya_port is not None else None,
            webhook_secret=WEBHOOK_SECRET, jwt_secret=self.jwt_secret, metrics_dir=str(metrics_dir),
            environment=os.environ.get("STORMPROOF_ENV", "test"),
        )

    def _client_addresses(self, stub_port: int) -> tuple[str, str, int]:
        """The database URL, Redis URL and Shunya port the app and the workers use: the links when proxied."""
        database_url, redis_url, shunya_port = self.database_url, self.redis_url, stub_port
        if self.proxy is not None:
            database_url = database_url.replace(f":{self.postgres.port}/", f":{self.links['postgres']}/")
            redis_url = redis_url.replace(f":{self.redis.port}/", f":{self.links['redis']}/")
            shunya_port = self.links.get("shunya", stub_port)
        return database_url, redis_url, shunya_port

    def _launch_app_early(self, database_url: str, redis_url: str, app_port: int, stub_port: int | None,
                          metrics_dir: Path, steps: _Steps) -> None:
        """Spawn the reference app before its database exists; it waits for it (``STORMPROOF_DATABASE_WAIT_MS``).

        Only the reference app is launched so: another backend (``app_command``) may not wait for its
        database, so it still starts once the database is made. Through the proxy, a connection to a
        PostgreSQL not up yet is closed by the link: the app's wait treats it like a refusal.
        """
        cfg = self.config
        env = self._app_env(database_url, redis_url, stub_port, metrics_dir)
        env.setdefault("STORMPROOF_DATABASE_WAIT_MS", "30000")
        self.app = ReferenceAppProcess(
            database_url=database_url, redis_url=redis_url, weakenings=cfg.weakenings, env=env,
            workers=cfg.app_workers, port=app_port, base_dir=self.base_dir, ready_path=cfg.app_ready_path,
        )
        self._services.append(self.app)
        self.app.launch()
        steps.done("app launched (its imports run while its database starts)")

    def _start_workers_and_app(self, plan: Any, steps: _Steps, started: float, database_url: str, redis_url: str,
                               env: dict[str, str]) -> None:
        """The task workers, then the app and the workers together (a launched app: only its wait)."""
        assert self.app is not None
        cfg = self.config
        for n, spec in enumerate(plan.workers):
            beat = str(self.base_dir / f"{spec.name}-beat-schedule") if cfg.retention_beat_s and n == 0 else None
            worker = CeleryWorkerProcess(
                database_url=database_url, redis_url=redis_url, weakenings=cfg.weakenings, env=env,
                concurrency=cfg.worker_concurrency, name=spec.name, base_dir=self.base_dir, beat_schedule=beat,
            )
            self._services.append(worker)
            self.workers.append(worker)
        with ThreadPoolExecutor(max_workers=1 + len(self.workers), thread_name_prefix="stack-start") as pool:
            futures = [pool.submit(self._start_logged, service, f"{service.kind} {getattr(service, 'name', '')}")
                       for service in (self.app, *self.workers)]
            for future in futures:
                future.result()
        steps.done("app and workers started")
        self.ready_after_s = time.monotonic() - started
        log.info("stack: ready in %.2f s", self.ready_after_s)

    def _start_database(self, own: bool, steps: _Steps, early: bool = False) -> None:
        """PostgreSQL (if ours) and the app's database; ``early``: only a migrated template to clone it from."""
        from stormproof.reference_app.db import migrate

        assert self.postgres is not None
        if own:
            self.postgres.start()
            steps.done("PostgreSQL started")
        if early:
            if self.template is None and self.postgres.prepared is not None:
                self.template = SCHEMA_DB  # made once, copied with the cluster (schema_prepared)
            elif self.template is None:
                self._schema_db = f"{self.database_name}_schema"
                self.postgres.create_database(self._schema_db)
                migrate(self.postgres.url(self._schema_db))
                self.template = self._schema_db
                steps.done("schema migrated")
            return
        self.postgres.create_database(self.database_name, template=self.template)
        if self.template is None:
            migrate(self.database_url)
        steps.done("database created" + (" and migrated" if self.template is None else " from the template"))

    def _start_redis(self, own: bool, steps: _Steps) -> None:
        assert self.redis is not None
        if own:
            self.redis.start()
            steps.done("Redis started")

    def _start_edge(self, plan: Any, upstreams: dict[str, int], app_port: int, steps: _Steps,
                    launch: Callable[[], None] | None = None) -> None:
        """The fault proxy and its links (then ``launch``: the app, early), then the Shunya stub (its webhooks
        go through the link)."""
        if self.proxy is not None:
            self.proxy.start()
            for link in plan.links:
                self.links[link.name] = self.proxy.link(link.name, upstreams[link.service])
            steps.done("fault proxy started, links made")
        if launch is not None:
            launch()
        if self.shunya is not None:
            self.shunya.webhook_url = (
                f"http://127.0.0.1:{self.links.get('webhook', app_port)}/api/v1/shunya/webhook")
            self.shunya.start()
            steps.done("Shunya stub started")

    def _seed(self, steps: _Steps) -> None:
        from stormproof.reference_app.seed import seed
        from stormproof.reference_app.settings import Settings

        cfg = self.config
        settings = Settings(database_url=self.database_url, redis_url=self.redis_url, environment="test",
                            jwt_secret=self.jwt_secret)
        self.tenants = seed(
            settings, tenants=cfg.tenants, reps=cfg.reps, appointments=cfg.appointments, consent=cfg.seed_consent,
            at_risk=cfg.seed_at_risk,
        )
        steps.done("tenants seeded")

    @staticmethod
    def _start_logged(service: Any, name: str) -> None:
        began = time.monotonic()
        service.start()
        log.info("stack: %s started in %.2f s", name.strip(), time.monotonic() - began)

    def stop(self) -> None:
        """Stop every service, then PostgreSQL and Redis; a service that fails to stop does not keep the others up.

        The app and the workers are only clients of the rest, so they stop together first (a Celery worker's
        warm shutdown alone takes 1.5 to 2.5 s), then the stub and the proxy in the reverse of their start.
        """
        steps = _Steps()
        services = list(reversed(self._services))
        clients = [s for s in services if getattr(s, "kind", None) in ("app", "worker")]

        def stop(service: Any) -> None:
            service.stop()
            steps.done(f"{getattr(service, 'kind', type(service).__name__)} stopped")

        errors: list[BaseException] = []
        if clients:
            with ThreadPoolExecutor(max_workers=len(clients), thread_name_prefix="stack-stop") as pool:
                outcomes = [pool.submit(stop, service) for service in clients]
            errors += [error for outcome in outcomes if (error := outcome.exception()) is not None]
        for service in services:
            if service not in clients:
                try:
                    stop(service)
                except Exception as exc:  # noqa: BLE001 - raised below, once everything else is stopped
                    errors.append(exc)
        self._services.clear()
        if self.postgres is not None:
            if self._own_postgres:
                self.postgres.stop()
            else:
                self.postgres.drop_database(self.database_name)
                if self._schema_db is not None:
                    self.postgres.drop_database(self._schema_db)
                    self.template = self._schema_db = None
        if self.redis is not None and self._own_redis:
            self.redis.stop()
        if self.base_dir is not None:
            remove_run_dir(self.base_dir)
            self.base_dir = None
        if errors:
            raise errors[0]

    @property
    def app_url(self) -> str:
        """Where clients reach the app: through the ``app`` proxy when there is one."""
        assert self.app is not None
        if "app" in self.links:
            return f"http://127.0.0.1:{self.links['app']}"
        return self.app.url

    @property
    def proxy_api_url(self) -> str | None:
        return self.proxy.api_url if self.proxy else None

    def info(self) -> dict[str, Any]:
        """Every endpoint and token, as ``stormproof up --json`` prints it."""
        assert self.app is not None and self.postgres is not None
        return {
            "app_url": self.app_url,
            "app_direct_url": self.app.url,
            "proxy_api_url": self.proxy_api_url,
            "proxies": {name: f"127.0.0.1:{port}" for name, port in self.links.items()},
            "database_url": self.postgres.url(self.database_name, driver="postgresql"),
            "redis_url": self.redis_url,
            "shunya_url": self.shunya.url if self.shunya else None,
            "webhook_secret": WEBHOOK_SECRET,
            "weakenings": sorted(self.config.weakenings),
            "task_workers": len(self.workers),
            "run_dir": str(self.base_dir),
            "ready_after_s": round(self.ready_after_s, 2),
            "tenants": [t.to_dict() for t in self.tenants],
        }

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
