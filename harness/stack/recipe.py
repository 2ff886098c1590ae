"""The stack recipe: which services run, the links between them, their environment, how each is known
to be ready, and what faults may act on. Declared once; two launchers start it.

``LocalStack`` (:mod:`stormproof.harness.stack.local`) launches each service as a local
process (the classes in ``postgres.py``, ``redis.py``, ``proxy.py``,
``shunya.py``, ``app.py``, ``worker.py``); ``DockerStack``
(:mod:`stormproof.harness.stack.docker`) launches the same services as containers, one
small testcontainers class each (:mod:`stormproof.harness.stack.containers`). Both
read this module for:

- the services and the order they start in (:func:`recipe`);
- the links: every connection of the system goes through a named proxy, the
  name network faults target (:data:`LINKS`);
- the environment of the app's processes (:func:`app_env`), given the
  addresses the launcher assigned;
- the readiness check of each service, in one word the launchers implement
  (:class:`Ready`);
- the fault targets (:meth:`Recipe.targets`): the plan checks a schedule
  against them before anything starts, the stacks' ``fault_targets()``
  return live handles under exactly these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .local import StackConfig

__all__ = ["LINKS", "Link", "Ready", "Recipe", "ServiceSpec", "Targets", "app_env", "recipe", "targets_for"]


class Ready(str, Enum):
    """How a launcher knows a service is up (each launcher implements every check)."""

    SQL = "SELECT 1 answers"
    PING = "Redis answers PING"
    PROXY_API = "the proxy API answers GET /version"
    HTTP_HEALTH = "GET /admin/health answers 200"
    HTTP_READY = "GET <ready path> answers 200"
    LOG_READY = "the Celery worker logs ' ready.'"


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack. ``faultable``: process faults (kill, pause) may act on it;
    ``pool``: it also offers ``<name>-pool``, its first task-running child process."""

    name: str
    kind: str  # postgres | redis | proxy | shunya | app | worker
    ready: Ready
    faultable: bool = True
    pool: bool = False


@dataclass(frozen=True)
class Link:
    """A named proxy from clients or services to ``service``: the target of network faults."""

    name: str
    service: str
    carries: str


#: Every link of the system; ``shunya`` and ``webhook`` exist only when the Shunya stub runs.
LINKS: tuple[Link, ...] = (
    Link("app", "app", "clients to the app"),
    Link("postgres", "postgres", "app and workers to PostgreSQL"),
    Link("redis", "redis", "app and workers to Redis"),
    Link("shunya", "shunya", "app and workers to the Shunya stub"),
    Link("webhook", "app", "the Shunya stub to the app's webhook"),
)


@dataclass(frozen=True)
class Targets:
    """The links network faults may act on, and the services process faults may act on."""

    links: tuple[str, ...]
    processes: tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    """The services in start order and the links; see :func:`recipe`."""

    services: tuple[ServiceSpec, ...]
    links: tuple[Link, ...]

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(spec.name == name for spec in self.services)

    @property
    def workers(self) -> tuple[ServiceSpec, ...]:
        return tuple(spec for spec in self.services if spec.kind == "worker")

    def targets(self) -> Targets:
        processes: list[str] = []
        for spec in self.services:
            if spec.faultable:
                processes.append(spec.name)
        processes += [f"{spec.name}-pool" for spec in self.services if spec.pool]
        return Targets(tuple(link.name for link in self.links), tuple(processes))


def with_shunya(config: StackConfig) -> bool:
    """The Shunya stub runs when the scenario configures it or when workers need it."""
    return config.shunya is not None or config.task_workers > 0


def recipe(config: StackConfig) -> Recipe:
    """The services and links of a stack with ``config``, the same for every launcher."""
    stub = with_shunya(config)
    services = [
        ServiceSpec("postgres", "postgres", Ready.SQL),
        ServiceSpec("redis", "redis", Ready.PING),
    ]
    if config.proxies:
        services.append(ServiceSpec("proxy", "proxy", Ready.PROXY_API, faultable=False))
    if stub:
        services.append(ServiceSpec("shunya", "shunya", Ready.HTTP_HEALTH))
    services.append(ServiceSpec("app", "app", Ready.HTTP_READY))
    services += [
        ServiceSpec(f"worker{i}", "worker", Ready.LOG_READY, pool=True) for i in range(1, config.task_workers + 1)
    ]
    links = tuple(link for link in LINKS if stub or link.name not in ("shunya", "webhook")) if config.proxies else ()
    return Recipe(tuple(services), links)


def targets_for(backend: str, config: StackConfig) -> Targets:
    """What ``backend`` ("local", "docker" or "external") offers faults for a stack with ``config``.

    Both stacks launch :func:`recipe` and so offer the same targets; an external
    backend (already running, not started here) offers nothing.
    """
    if backend in ("local", "docker"):
        return recipe(config).targets()
    if backend == "external":
        return Targets((), ())
    raise ValueError(f"unknown backend {backend!r}; allowed: local, docker, external")


def app_env(
    config: StackConfig,
    *,
    database_url: str,
    redis_url: str,
    shunya_url: str | None,
    webhook_secret: str,
    jwt_secret: str,
    metrics_dir: str,
    environment: str = "test",
) -> dict[str, str]:
    """The environment of the app's processes (API and workers), addresses as the launcher assigned them.

    ``config.env`` (the scenario's settings) wins over everything else.
    """
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STORMPROOF_WEAKEN": ",".join(sorted(set(config.weakenings))),
        "STORMPROOF_ENV": environment,
        "STORMPROOF_JWT_SECRET": jwt_secret,
        "SHUNYA_WEBHOOK_SECRET": webhook_secret,
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
    }
    if shunya_url is not None:
        env["SHUNYA_URL"] = shunya_url
    if config.retention_beat_s:
        env["STORMPROOF_RETENTION_INTERVAL_SECONDS"] = str(config.retention_beat_s)
    return {**env, **config.env}


def worker_args(name: str, concurrency: int, beat_schedule: str | None = None) -> list[str]:
    """The Celery worker's arguments after ``worker -Q shunya`` (both launchers).

    ``beat_schedule``: the worker also runs the app's beat (``-B``, its schedule kept in that file), which sends
    the periodic retention (plan F1) every ``STORMPROOF_RETENTION_INTERVAL_SECONDS``: one worker of a stack
    only, or each would send it."""
    beat = ["-B", "-s", beat_schedule] if beat_schedule else []
    return [
        "-P", "prefork", "-c", str(concurrency), "-n", f"{name}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO", *beat,
    ]


def describe(spec: Recipe) -> Mapping[str, str]:
    """Service name -> its readiness check in words (for error messages and docs)."""
    return {s.name: s.ready.value for s in spec.services}
