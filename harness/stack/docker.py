"""The whole reference system as Docker containers, through testcontainers: ``LocalStack``'s surface.

Why a second stack: ``LocalStack`` runs every service as a process on
loopback, which is fast and needs nothing but Debian packages. This one runs
the same services the way they are deployed, as containers on one private
network, with every connection of the app and its workers going through a
proxy speaking Toxiproxy's HTTP API (ours, or the real Toxiproxy: the image
setting decides), so network faults act on real sockets between hosts.

Layout (one network, ``stormproof-<run id>``; aliases in brackets)::

    host --127.0.0.1:P--> [proxy]:18000 --> [app]:8000 (uvicorn, config.app_workers)
    app, workers --> [proxy]:15432 --> [postgres]:5432
    app, workers --> [proxy]:16379 --> [redis]:6379
    app, workers --> [proxy]:18090 --> [shunya]:8090 (the Shunya stub)
    shunya (webhooks) --> [proxy]:18001 --> [app]:8000

The services, links, environment and readiness checks come from the stack
recipe (:mod:`stormproof.harness.stack.recipe`), the same one ``LocalStack`` launches
as processes; each service is one small testcontainers class
(:mod:`stormproof.harness.stack.containers`). PostgreSQL, Redis, the Shunya stub, the
proxy API and every link are also published on 127.0.0.1, on ports chosen
before the containers are created (so a container restarted by a process
fault keeps them), so the harness can inspect state directly, past the
faults. Process faults act on the containers under the recipe's names
(:meth:`DockerStack.fault_targets`). The schema is migrated and seeded from
the host, with the same code and JWT secret as the app (``Settings.from_env``
over the same environment).

Cleanup: Ryuk is not used (there is no registry here to pull it from), so
``stop()`` removes every container and the network itself, after saving each
container's log tail into ``run_dir``; ``start()`` failing, Ctrl-C and
interpreter exit all go through ``stop()``. Everything carries the labels
``io.stormproof.run=<run id>`` and ``io.stormproof.owner=<host>:<pid>``: a
later stack sweeps what a SIGKILLed harness left behind, as run dirs are swept.

Images are settings (see :class:`DockerImages`); ``scripts/build-images.sh``
builds local equivalents on a machine without a registry.

Metrics (:meth:`DockerStack.scrape_metrics`): each container keeps its own
Prometheus multiprocess directory, and the harness adds the app's ``/metrics``
and every task worker's counters up, series by series, as Prometheus' ``sum``
over targets would. Why not one multiprocess volume shared by the app and the
workers: prometheus_client names its files by PID, and PIDs repeat across
containers (each has its own PID namespace: the app's uvicorn and a worker's
Celery main are both PID 7 or so), so two processes would write one mmapped
file. Making PIDs unique means sharing one PID namespace, which ties the
workers' lives to the namespace holder's (a kill fault on the app would kill
the workers too), or changing how the app names its files. Summing keeps every
container independent, as deployed, and needs nothing from the app but what
it already writes.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import signal
import socket
import threading
import time
import warnings
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import httpx

from ..faults.client import ToxiproxyClient
from .errors import ServiceStartError, StackError
from .local import WEBHOOK_SECRET, LocalStack, StackConfig
from .ports import free_ports
from .recipe import LINKS, Targets, app_env, recipe
from .rundir import make_run_dir, remove_run_dir

if TYPE_CHECKING:  # docker and testcontainers come with the dev extra; imported when a stack starts
    import docker
    from testcontainers.core.network import Network

    from .containers import StackContainer

    from stormproof.reference_app.settings import Settings

__all__ = [
    "DockerImages",
    "DockerStack",
    "DockerUnavailableError",
    "ImageUnavailableError",
    "OWNER_LABEL",
    "PROXIES",
    "RUN_LABEL",
    "SERVICE_LABEL",
    "docker_unreachable_reason",
    "sweep_stale_docker_runs",
]

RUN_LABEL = "io.stormproof.run"
SERVICE_LABEL = "io.stormproof.service"
OWNER_LABEL = "io.stormproof.owner"

PROXY_API_PORT = 8474
APP_PORT = 8000
SHUNYA_PORT = 8090
POSTGRES_USER = "stormproof"
POSTGRES_DB = "stormproof"

#: Where each service listens inside its container.
SERVICE_PORTS = {"postgres": 5432, "redis": 6379, "shunya": SHUNYA_PORT, "app": APP_PORT}
#: Where each link of the recipe (:data:`stormproof.harness.stack.recipe.LINKS`) listens in the proxy container.
LINK_PORTS = {"app": 18000, "postgres": 15432, "redis": 16379, "shunya": 18090, "webhook": 18001}
#: Proxies created in the proxy container: name -> (listen port there, upstream alias:port).
PROXIES: dict[str, tuple[int, str]] = {
    link.name: (LINK_PORTS[link.name], f"{link.service}:{SERVICE_PORTS[link.service]}") for link in LINKS
}

_DOCKERD_HINT = (
    "Start a daemon and point DOCKER_HOST at it, e.g. (as root) "
    "d=$(mktemp -d); dockerd --iptables=false --ip-forward=false --data-root $d/data "
    "--host unix://$d/docker.sock --exec-root $d/exec --pidfile $d/docker.pid & "
    "export DOCKER_HOST=unix://$d/docker.sock (scripts/docker-lane.sh does all of this), "
    "or use LocalStack, which needs no Docker."
)


#: Each app or worker container's own Prometheus multiprocess directory.
METRICS_DIR = "/tmp/stormproof-metrics"
#: Run in a worker container: its processes' counters as a Prometheus text exposition.
_EXPORT_METRICS = (
    "import sys; from prometheus_client import CollectorRegistry, generate_latest, multiprocess; "
    "r = CollectorRegistry(); multiprocess.MultiProcessCollector(r, path={path!r}); "
    "sys.stdout.write(generate_latest(r).decode())"
)


class DockerUnavailableError(StackError):
    """No Docker daemon answers; the message names DOCKER_HOST and how to start one."""


class ImageUnavailableError(StackError):
    """An image is neither present nor pullable; the message names the setting and the build script."""


@dataclass(frozen=True)
class DockerImages:
    """The image of each service, from ``STORMPROOF_IMAGE_*`` settings.

    The defaults are the public images, pulled on first use; where no registry
    is reachable, ``scripts/build-images.sh`` builds ``stormproof/postgres:15``,
    ``stormproof/redis:7`` and ``stormproof/fault-proxy`` (our proxy, a drop-in
    for Toxiproxy's API) and the settings point at them. The app image serves
    the app, the Celery workers and the Shunya stub.
    """

    postgres: str = "postgres:15"
    redis: str = "redis:7"
    proxy: str = "ghcr.io/shopify/toxiproxy:2.12.0"
    app: str = "stormproof/app"

    SETTINGS: ClassVar[dict[str, str]] = {
        "postgres": "STORMPROOF_IMAGE_POSTGRES",
        "redis": "STORMPROOF_IMAGE_REDIS",
        "proxy": "STORMPROOF_IMAGE_PROXY",
        "app": "STORMPROOF_IMAGE_APP",
    }
    LOCAL_BUILDS: ClassVar[dict[str, str]] = {
        "postgres": "stormproof/postgres:15",
        "redis": "stormproof/redis:7",
        "proxy": "stormproof/fault-proxy",
        "app": "stormproof/app",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DockerImages:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(**{
            field: env.get(setting) or getattr(defaults, field) for field, setting in cls.SETTINGS.items()
        })


def _docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (the default; DOCKER_HOST is unset)"


def _connect(timeout: float = 10.0) -> docker.DockerClient:
    """A docker-py client that has answered a ping, or :class:`DockerUnavailableError`."""
    try:
        import docker
    except ImportError:
        raise DockerUnavailableError(
            "the docker and testcontainers Python packages are missing; install them with: "
            ".venv/bin/pip install -e '.[dev]'"
        ) from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - every failure here means the same thing to the user
        raise DockerUnavailableError(f"Docker is unreachable at DOCKER_HOST={_docker_host()}: {exc}. {_DOCKERD_HINT}") from exc
    return client


def docker_unreachable_reason(timeout: float = 5.0) -> str | None:
    """None when a Docker daemon answers; otherwise why not, naming DOCKER_HOST and the fix.

    For tests and benchmarks that skip (or fail, in CI) without Docker.
    """
    try:
        _connect(timeout).close()
    except DockerUnavailableError as exc:
        return str(exc)
    return None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_docker_runs(client: docker.DockerClient) -> list[str]:
    """Remove containers and networks of stacks whose harness process on this host is gone.

    The safety net for a SIGKILLed harness (no ``stop()`` ran and there is no
    Ryuk): only objects labelled by a stack of this host whose owner PID no
    longer exists are touched. Returns the names removed.
    """
    removed: list[str] = []
    host = socket.gethostname()

    def stale(labels: Mapping[str, str]) -> bool:
        owner_host, _, pid = (labels.get(OWNER_LABEL) or "").rpartition(":")
        return owner_host == host and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))

    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        if stale(container.labels):
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
                removed.append(container.name)
    for network in client.networks.list(filters={"label": OWNER_LABEL}):
        if stale(network.attrs.get("Labels") or {}):
            with contextlib.suppress(Exception):
                network.remove()
                removed.append(network.name)
    return removed


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, so a second Ctrl-C cannot cut a cleanup short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if previous is signal.default_int_handler:
                raise KeyboardInterrupt
            if callable(previous):
                previous(signal.SIGINT, None)


C = TypeVar("C", bound="StackContainer")

_live: weakref.WeakSet[DockerStack] = weakref.WeakSet()


@atexit.register
def _stop_live_stacks() -> None:
    for stack in list(_live):
        stack.stop()


class DockerStack:
    """PostgreSQL, Redis, the fault proxy, the Shunya stub, the app and Celery workers, in containers.

    Same public surface as :class:`~stormproof.harness.stack.local.LocalStack` (``start()``,
    ``stop()``, context manager, :meth:`info` with the same keys), plus
    ``proxy_api_url`` and :meth:`faults` for the proxy between every pair of
    services (proxy names: :data:`PROXIES`), ``links`` and :meth:`fault_targets` as locally.
    """

    def __init__(
        self,
        config: StackConfig,
        *,
        images: DockerImages | None = None,
        start_timeout: float = 90.0,
        keep_logs: bool = True,
    ) -> None:
        """``start_timeout`` bounds each service's readiness wait; ``keep_logs`` keeps ``run_dir``
        (the saved container logs) after ``stop()``; it is swept like every run dir once this
        process has exited."""
        self.config = config
        self.images = images or DockerImages.from_env()
        self.start_timeout = start_timeout
        self.keep_logs = keep_logs
        self.run_id = secrets.token_hex(6)
        self.run_dir: Path | None = None
        self.tenants: list[Any] = []
        self.ready_after_s = 0.0
        self.task_workers = 0
        self._postgres_password = secrets.token_hex(12)
        self._client: docker.DockerClient | None = None
        self._network: Network | None = None
        self._network_created = False
        self._containers: dict[str, StackContainer] = {}
        self._host = "127.0.0.1"
        self._ports: dict[str, int] = {}
        #: Link (proxy) name -> the host port it is published on, as ``LocalStack.links``.
        self.links: dict[str, int] = {}

    # -- addresses (valid once started) ----------------------------------------------------------
    def _url(self, scheme: str, service: str, path: str = "") -> str:
        if service not in self._ports:
            raise StackError(f"the {service} service is not running (start the stack first)")
        return f"{scheme}://{self._host}:{self._ports[service]}{path}"

    @property
    def app_url(self) -> str:
        """The app as the host sees it: through the proxy named ``app``."""
        return self._url("http", "app")

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the stack's database, published directly (no proxy, no faults)."""
        if "postgres" not in self._ports:
            raise StackError("the postgres service is not running (start the stack first)")
        credentials = f"{POSTGRES_USER}:{self._postgres_password}"
        return f"postgresql+psycopg://{credentials}@{self._host}:{self._ports['postgres']}/{POSTGRES_DB}"

    @property
    def redis_url(self) -> str:
        return self._url("redis", "redis", "/0")

    @property
    def shunya_url(self) -> str | None:
        return self._url("http", "shunya") if "shunya" in self._ports else None

    @property
    def proxy_api_url(self) -> str:
        return self._url("http", "proxy")

    # -- what a scenario run needs (stormproof.harness.stack.system.SystemUnderTest) -----------------------
    webhook_secret = WEBHOOK_SECRET
    #: The key that signs the seeded tenants' tokens, and that the app verifies them with (as locally).
    jwt_secret = LocalStack.jwt_secret

    @property
    def metrics_url(self) -> str:
        """The app's /metrics through the ``app`` proxy (runs scrape it after every fault is healed)."""
        return f"{self.app_url}/metrics"

    def scrape_metrics(self, timeout: float = 10.0) -> str:
        """The app's ``/metrics`` plus each task worker container's counters, summed series by series.

        A worker has no HTTP endpoint: its multiprocess directory is rendered in
        the container (``docker exec``, the image's own prometheus_client). See
        the module docstring for why this and not a shared volume.
        """
        from ..invariants.metrics import sum_expositions

        texts = [httpx.get(self.metrics_url, timeout=timeout).text]
        for i in range(self.task_workers):
            service = f"worker{i + 1}"
            container = self._wrapped(service)
            if container is None:
                raise StackError(f"cannot read the metrics of {service}: the container was never created")
            result = container.exec_run(["python", "-c", _EXPORT_METRICS.format(path=METRICS_DIR)])
            if result.exit_code != 0:
                raise StackError(f"cannot read the metrics of {service} (exit {result.exit_code}): "
                                 f"{result.output.decode(errors='replace').strip()[-300:]}")
            texts.append(result.output.decode())
        return sum_expositions(texts)

    @property
    def check_dsn(self) -> str:
        """libpq DSN of the published PostgreSQL port: the checkers' direct view, no proxy."""
        return (f"host={self._host} port={self._ports['postgres']} user={POSTGRES_USER} "
                f"password={self._postgres_password} dbname={POSTGRES_DB}")

    @property
    def shunya_admin_url(self) -> str | None:
        return self.shunya_url

    @property
    def log_dir(self) -> Path | None:
        """The run dir, after saving each container's log there (as ``<service>.log``)."""
        if self.run_dir is not None:
            for service in list(self._containers):
                with contextlib.suppress(Exception):
                    # The whole log: the checkers read every task's and error's line in it (a tail would
                    # leave the early ones out, and judge them missing).
                    (self.run_dir / f"{service}.log").write_bytes(self._logs(service))
        return self.run_dir

    @classmethod
    def targets(cls, config: StackConfig) -> Targets:
        """The fault targets a stack with ``config`` offers, known before it starts (the recipe's)."""
        return recipe(config).targets()

    def fault_targets(self) -> dict[str, Any]:
        """Containers that process faults may act on, by the recipe's names (as ``LocalStack``'s)."""
        from .containers import ContainerPool, ContainerProcess, WorkerContainer

        targets: dict[str, Any] = {}
        for spec in recipe(self.config).services:
            container = self._containers.get(spec.name)
            if container is None or not spec.faultable:
                continue
            targets[spec.name] = ContainerProcess(container)
            if spec.pool and isinstance(container, WorkerContainer):
                targets[f"{spec.name}-pool"] = ContainerPool(container)
        return targets

    def faults(self, timeout: float = 5.0) -> ToxiproxyClient:
        """A client for the stack's proxy (close it, or use it as a context manager)."""
        return ToxiproxyClient(self.proxy_api_url, timeout=timeout)

    def container_ids(self) -> dict[str, str]:
        """Docker id of each service's container, e.g. to pause or kill one."""
        return {name: wrapped.id for name in self._containers if (wrapped := self._wrapped(name)) is not None}

    def _wrapped(self, service: str) -> Any:
        """The docker-py container of ``service``, or None if it was never created."""
        container = self._containers.get(service)
        return container.wrapped() if container is not None else None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> DockerStack:
        if self._containers or self._network is not None:
            raise StackError(f"DockerStack {self.run_id} is already started; stop() it first")
        _live.add(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from .containers import (AppContainer, PostgresContainer, ProxyContainer, RedisContainer, ShunyaContainer,
                                 WorkerContainer)

        started = time.monotonic()
        cfg = self.config
        plan = recipe(cfg)
        env = self._service_env()
        settings = self._settings(env)  # validates weakenings and secrets before anything starts
        self._client = _connect()
        self._client.api.timeout = 120  # past the ping: removals and pulls may take a while
        sweep_stale_docker_runs(self._client)
        self._check_images()
        self.run_dir = make_run_dir("docker")
        self._create_network()
        # Host ports chosen here, not by Docker: a container restarted by a fault publishes the same ones.
        services = ["postgres", "redis", "proxy"] + (["shunya"] if plan.has("shunya") else [])
        ports = free_ports(len(plan.links) + len(services))
        self.links = {link.name: ports.pop() for link in plan.links}  # every link, published on loopback
        self._ports = {**{service: ports.pop() for service in services}, "app": self.links["app"]}

        postgres = self._add(PostgresContainer(
            self.images.postgres, user=POSTGRES_USER, password=self._postgres_password, dbname=POSTGRES_DB,
            host_port=self._ports["postgres"], **self._common("postgres"),
        ).launch())
        redis = self._add(RedisContainer(self.images.redis, host_port=self._ports["redis"],
                                         **self._common("redis")).launch())
        proxy = self._add(ProxyContainer(
            self.images.proxy, api_host_port=self._ports["proxy"],
            publish={PROXIES[name][0]: host_port for name, host_port in self.links.items()},
            **self._common("proxy"),
        ).launch())
        proxy.wait_ready()
        with self.faults() as client:
            client.populate([
                {"name": link.name, "listen": f"0.0.0.0:{PROXIES[link.name][0]}", "upstream": PROXIES[link.name][1],
                 "enabled": True}
                for link in plan.links
            ])
        shunya = None
        if plan.has("shunya"):  # needs nothing else up yet: start it now, check it later
            shunya = self._add(ShunyaContainer(
                self.images.app, webhook_url=f"http://proxy:{PROXIES['webhook'][0]}/api/v1/shunya/webhook",
                webhook_secret=WEBHOOK_SECRET, config=json.dumps(cfg.shunya) if cfg.shunya else None,
                host_port=self._ports["shunya"], **self._common("shunya"),
            ).launch())

        postgres.wait_ready()
        redis.wait_ready()
        self._migrate_and_seed(settings)

        app = self._add(AppContainer(
            self.images.app, app_workers=cfg.app_workers, ready_url=f"{self.app_url}{cfg.app_ready_path}",
            **self._common("app", env),
        ).launch())
        workers = [
            self._add(WorkerContainer(
                self.images.app, concurrency=cfg.worker_concurrency, beat=bool(cfg.retention_beat_s) and n == 0,
                **self._common(spec.name, {**env, "STORMPROOF_LOG_LEVEL": "INFO"}),
            ).launch())
            for n, spec in enumerate(plan.workers)
        ]
        if shunya is not None:
            shunya.wait_ready()
        app.wait_ready()
        for worker in workers:
            worker.wait_ready()
        self.task_workers = len(workers)
        self.ready_after_s = time.monotonic() - started

    def _common(self, service: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """What every container of the stack shares: network, alias, name, labels, timeout."""
        assert self._network is not None
        common: dict[str, Any] = {
            "service": service, "name": f"stormproof-{self.run_id}-{service}", "network": self._network,
            "labels": self._labels(service), "host": self._host, "start_timeout": self.start_timeout,
        }
        if env is not None:
            common["env"] = dict(env)
        return common

    def _add(self, container: C) -> C:
        """Track ``container`` before it starts, so stop() removes it whatever happens next."""
        self._containers[container.service] = container
        return container

    def _service_env(self) -> dict[str, str]:
        """Environment of the app and its workers: every connection goes through the proxy."""
        cfg = self.config
        return app_env(
            cfg,
            database_url=(
                f"postgresql://{POSTGRES_USER}:{self._postgres_password}@proxy:{PROXIES['postgres'][0]}/{POSTGRES_DB}"
            ),
            redis_url=f"redis://proxy:{PROXIES['redis'][0]}/0",
            shunya_url=f"http://proxy:{PROXIES['shunya'][0]}",
            webhook_secret=WEBHOOK_SECRET,
            jwt_secret=self.jwt_secret,
            environment=os.environ.get("STORMPROOF_ENV", "test"),
            # Per container: Prometheus' multiprocess files are named by PID, which repeat across containers;
            # scrape_metrics() adds the containers' counters up.
            metrics_dir=METRICS_DIR,
        )

    def _settings(self, env: Mapping[str, str]) -> Settings:
        """The app's settings as the host sees them (host addresses patched in at seed time)."""
        from stormproof.reference_app.settings import Settings

        return Settings.from_env(env)

    def _check_images(self) -> None:
        """Every image present, or pulled now; otherwise one error naming each setting and the fix."""
        import docker
        from testcontainers.core.config import testcontainers_config

        assert self._client is not None
        wanted = {field: getattr(self.images, field) for field in DockerImages.SETTINGS}
        problems = []
        for field, image in wanted.items():
            try:
                self._client.images.get(image)
                continue
            except docker.errors.ImageNotFound:
                pass
            try:
                self._client.images.pull(image)
            except docker.errors.DockerException as exc:
                setting = DockerImages.SETTINGS[field]
                problems.append(
                    f"{setting}={image}: not present and not pullable ({str(exc).strip()[:200]}); "
                    f"build it with scripts/build-images.sh and set {setting}={DockerImages.LOCAL_BUILDS[field]}"
                )
        if not testcontainers_config.ryuk_disabled:
            try:
                self._client.images.get(testcontainers_config.ryuk_image)
            except docker.errors.ImageNotFound:
                problems.append(
                    f"testcontainers' Ryuk ({testcontainers_config.ryuk_image}) is enabled but not present; "
                    "set TESTCONTAINERS_RYUK_DISABLED=true (DockerStack removes its containers itself)"
                )
        if problems:
            raise ImageUnavailableError("images missing: " + "; ".join(problems))

    def _labels(self, service: str) -> dict[str, str]:
        return {RUN_LABEL: self.run_id, SERVICE_LABEL: service, OWNER_LABEL: _owner()}

    def _create_network(self) -> None:
        from testcontainers.core.docker_client import DockerClient
        from testcontainers.core.network import Network

        client = DockerClient()
        host = client.host()
        client.client.close()
        # Publish on loopback when the daemon is local, so nothing is reachable from other machines.
        self._host = "127.0.0.1" if host in ("localhost", "127.0.0.1", "::1") else host
        network = Network(docker_network_kw={"labels": self._labels("network")})
        network.name = f"stormproof-{self.run_id}"
        self._network = network
        network.create()
        self._network_created = True

    def _logs(self, service: str, tail: int | str = "all") -> bytes:
        container = self._containers.get(service)
        return container.logs_bytes(tail) if container is not None else b""

    def _migrate_and_seed(self, settings: Settings) -> None:
        """Migrate and seed from the host over the published port: no extra container to start."""
        from dataclasses import replace

        from stormproof.reference_app.db import migrate
        from stormproof.reference_app.seed import seed

        cfg = self.config
        host_settings = replace(settings, database_url=self.database_url, redis_url=self.redis_url)
        try:
            migrate(self.database_url)
            self.tenants = seed(host_settings, tenants=cfg.tenants, reps=cfg.reps, appointments=cfg.appointments,
                                at_risk=cfg.seed_at_risk)
        except Exception as exc:
            raise ServiceStartError("schema (migrate and seed from the host)", f"{type(exc).__name__}: {exc}") from exc

    def stop(self) -> None:
        """Save each container's log tail into ``run_dir``, then remove every container and the network.

        Idempotent; never raises for a container that is already gone. What
        could not be removed is reported as a warning with its name.
        """
        with _interrupts_deferred():
            self._stop()

    def _stop(self) -> None:
        _live.discard(self)
        leftovers: list[str] = []
        for service, container in reversed(list(self._containers.items())):
            wrapped = self._wrapped(service)
            if wrapped is None:
                continue
            if self.run_dir is not None:
                with contextlib.suppress(OSError):
                    (self.run_dir / f"{service}.log").write_bytes(self._logs(service))
            try:
                wrapped.remove(force=True, v=True)
            except Exception as exc:  # noqa: BLE001 - keep removing the others
                if "No such container" not in str(exc) and "404" not in str(exc):
                    leftovers.append(f"container {service}: {exc}")
            with contextlib.suppress(Exception):
                container.get_docker_client().client.close()
        self._containers.clear()
        if self._network is not None and self._network_created:
            try:
                self._network.remove()
            except Exception as exc:  # noqa: BLE001
                leftovers.append(f"network {self._network.name}: {exc}")
        self._network = None
        self._network_created = False
        if self._client is not None:
            leftovers = self._sweep_run(leftovers)
            self._client.close()
            self._client = None
        self._ports.clear()
        self.links.clear()
        if self.run_dir is not None and not self.keep_logs:
            remove_run_dir(self.run_dir)
            self.run_dir = None
        if leftovers:
            warnings.warn(f"DockerStack {self.run_id}: could not remove {'; '.join(leftovers)}", RuntimeWarning, stacklevel=3)

    def _sweep_run(self, leftovers: list[str]) -> list[str]:
        """Remove anything still labelled with this run (e.g. created when start was interrupted)."""
        assert self._client is not None
        selector = {"label": f"{RUN_LABEL}={self.run_id}"}
        remaining: list[str] = []
        try:
            for container in self._client.containers.list(all=True, filters=selector):
                try:
                    container.remove(force=True, v=True)
                except Exception as exc:  # noqa: BLE001
                    remaining.append(f"container {container.name}: {exc}")
            for network in self._client.networks.list(filters=selector):
                try:
                    network.remove()
                except Exception as exc:  # noqa: BLE001
                    remaining.append(f"network {network.name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the daemon went away: say what may be left
            return [*leftovers, f"listing run {self.run_id}: {exc}"]
        return remaining

    def info(self) -> dict[str, Any]:
        """Every endpoint and token, with the same keys as ``LocalStack.info()`` plus ``proxy_api_url``."""
        return {
            "app_url": self.app_url,
            "database_url": self.database_url.replace("postgresql+psycopg://", "postgresql://", 1),
            "redis_url": self.redis_url,
            "shunya_url": self.shunya_url,
            "webhook_secret": WEBHOOK_SECRET,
            "weakenings": sorted(self.config.weakenings),
            "task_workers": self.task_workers,
            "run_dir": str(self.run_dir),
            "ready_after_s": round(self.ready_after_s, 2),
            "tenants": [t.to_dict() for t in self.tenants],
            "proxy_api_url": self.proxy_api_url,
            "proxies": {name: f"{self._host}:{port}" for name, port in self.links.items()},
        }

    def __enter__(self) -> DockerStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

