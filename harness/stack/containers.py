"""The container launcher's services: one small testcontainers class per service of the recipe.

As testcontainers' own modules do (``RedisContainer``, ``PostgresContainer``):
defaults in ``__init__``, typed accessors, an explicit readiness wait
(:meth:`StackContainer.wait_ready`, the recipe's :class:`~stormproof.harness.stack.recipe.Ready`
check of that service), and ``start()`` returning once the service answers.
:meth:`StackContainer.launch` starts without waiting, so a stack can start
independent services together and wait for them afterwards.

Nothing here needs our own images: PostgreSQL is configured by the official
image's ``POSTGRES_*`` variables and server flags as arguments, Redis by
``redis-server`` arguments, the proxy only through Toxiproxy's HTTP API (so
``ghcr.io/shopify/toxiproxy`` and our ``stormproof/fault-proxy`` are
interchangeable); only the app image is ours, since it is the system under test.

Process faults: :class:`ContainerProcess` makes a container a fault target
under its service's name (kill = ``docker kill``, restart = ``docker start``
then the same readiness wait, pause = ``docker pause``, the cgroup freezer);
:class:`ContainerPool` targets a Celery worker's first pool process inside
its container through ``docker exec``. All of it goes through the Docker API
that testcontainers holds: no host PID is signalled, so it works against a
remote daemon too.

Host ports are chosen before the container is created (not left to Docker),
so a restarted container publishes the same ports and every URL the harness
handed out stays valid.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from testcontainers.core.container import DockerContainer

from .errors import ServiceStartError
from .recipe import Ready, worker_args

if TYPE_CHECKING:
    from testcontainers.core.network import Network

__all__ = [
    "AppContainer",
    "ContainerPool",
    "ContainerProcess",
    "PostgresContainer",
    "ProxyContainer",
    "RedisContainer",
    "ShunyaContainer",
    "StackContainer",
    "WorkerContainer",
]


class StackContainer(DockerContainer):
    """One service of a stack in a container on the stack's network, under its service name as alias.

    ``publish`` maps container ports to host ports (on ``host_ip``); the subclass
    defines :meth:`ready` (one probe) and :attr:`READY` (what it checks, from the recipe).
    """

    READY: ClassVar[Ready]

    def __init__(
        self,
        image: str,
        *,
        service: str,
        name: str,
        network: Network,
        labels: Mapping[str, str],
        host: str = "127.0.0.1",
        publish: Mapping[int, int] | None = None,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 90.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            image, command=list(command) if command else None,  # type: ignore[arg-type]  # argv for docker-py
            env=dict(env or {}), name=name, labels=dict(labels),
            init=True,  # reaps Celery's and uvicorn's children and forwards signals
            **kwargs,
        )
        self.service = service
        self.host = host
        self.start_timeout = start_timeout
        self.published = dict(publish or {})
        self.with_network(network).with_network_aliases(service)
        bind_ip = "127.0.0.1" if host == "127.0.0.1" else "0.0.0.0"
        for port, host_port in self.published.items():
            self.ports[f"{port}/tcp"] = (bind_ip, host_port)  # type: ignore[assignment]

    # -- typed accessors ---------------------------------------------------------------------------
    def url(self, scheme: str, port: int, path: str = "") -> str:
        return f"{scheme}://{self.host}:{self.published[port]}{path}"

    def wrapped(self) -> Any:
        """The docker-py container, or None if it was never created."""
        return self._container

    def logs_bytes(self, tail: int | str = "all") -> bytes:
        container = self._container
        if container is None:
            return b""
        try:
            return bytes(container.logs(tail=tail))
        except Exception:  # noqa: BLE001 - a vanished container has no logs to give
            return b""

    def describe(self) -> str:
        image = self.image
        return f"{self.service} container ({image})"

    # -- lifecycle ----------------------------------------------------------------------------------
    def launch(self) -> StackContainer:
        """Create and start the container; return at once (see :meth:`wait_ready`)."""
        self.before_start()
        super().start()
        return self

    def start(self) -> StackContainer:
        """Start and wait until the service answers (testcontainers' module convention)."""
        self.launch()
        self.wait_ready()
        return self

    def before_start(self) -> None:
        """Called before every start, first and restart alike."""

    def ready(self) -> bool:
        """One readiness probe; an exception counts as not ready. Each service's class defines it."""
        raise TypeError(f"{type(self).__name__} defines no readiness probe: every service container needs one")

    def wait_ready(self) -> None:
        """Poll :meth:`ready` until true; fail at once if the container exits, or at ``start_timeout``."""
        container = self._container
        assert container is not None, "launch() first"
        started = time.monotonic()
        while True:
            try:
                if self.ready():
                    return
            except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
                pass
            container.reload()  # one cheap API call: a crashed service fails now, not at the timeout
            if container.status not in ("created", "running", "restarting"):
                code = container.attrs.get("State", {}).get("ExitCode")
                raise ServiceStartError(
                    self.describe(),
                    f"it exited (status {container.status}, exit code {code}) before {self.READY.value}",
                    self.logs_bytes(tail=40).decode(errors="replace"),
                )
            if time.monotonic() - started >= self.start_timeout:
                raise ServiceStartError(
                    self.describe(), f"{self.READY.value}: not ready after {time.monotonic() - started:.1f}s",
                    self.logs_bytes(tail=40).decode(errors="replace"),
                )
            time.sleep(0.1)


def _http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2.0).status_code == 200


class PostgresContainer(StackContainer):
    """PostgreSQL configured as the official image is: ``POSTGRES_*`` variables, server flags as arguments."""

    READY = Ready.SQL
    PORT = 5432
    SERVER_FLAGS = ("-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
                    "-c", "shared_buffers=64MB")

    def __init__(self, image: str, *, user: str, password: str, dbname: str, host_port: int, **kwargs: Any) -> None:
        env = {**(kwargs.pop("env", None) or {}), "POSTGRES_USER": user, "POSTGRES_PASSWORD": password,
               "POSTGRES_DB": dbname}
        super().__init__(image, publish={self.PORT: host_port}, command=list(self.SERVER_FLAGS), env=env, **kwargs)
        self.user, self.password, self.dbname = user, password, dbname

    def url(self, scheme: str = "postgresql+psycopg", port: int = PORT, path: str = "") -> str:  # type: ignore[override]
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.published[self.PORT]}/{self.dbname}"

    def dsn(self) -> str:
        return (f"host={self.host} port={self.published[self.PORT]} user={self.user} "
                f"password={self.password} dbname={self.dbname}")

    def ready(self) -> bool:
        import psycopg

        with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True


class RedisContainer(StackContainer):
    """Redis without persistence: a restart loses every key, locks included (as locally)."""

    READY = Ready.PING
    PORT = 6379

    def __init__(self, image: str, *, host_port: int, **kwargs: Any) -> None:
        super().__init__(image, publish={self.PORT: host_port},
                         command=["redis-server", "--save", "", "--appendonly", "no"], **kwargs)

    def redis_url(self, db: int = 0) -> str:
        return self.url("redis", self.PORT, f"/{db}")

    def ready(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.redis_url(), socket_timeout=2, socket_connect_timeout=2, retry=None)
        try:
            return bool(client.ping())
        finally:
            client.close()


class ProxyContainer(StackContainer):
    """A server of Toxiproxy's HTTP API (the real Toxiproxy or ours); ``publish`` adds link ports."""

    READY = Ready.PROXY_API
    API_PORT = 8474

    def __init__(self, image: str, *, api_host_port: int, publish: Mapping[int, int] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(image, publish={self.API_PORT: api_host_port, **(publish or {})}, **kwargs)

    @property
    def api_url(self) -> str:
        return self.url("http", self.API_PORT)

    def ready(self) -> bool:
        return _http_ok(f"{self.api_url}/version")


class ShunyaContainer(StackContainer):
    """The Shunya stub (app image, role ``shunya``), posting webhooks to ``webhook_url``."""

    READY = Ready.HTTP_HEALTH
    PORT = 8090

    def __init__(self, image: str, *, webhook_url: str, webhook_secret: str, config: str | None,
                 host_port: int, **kwargs: Any) -> None:
        command = ["shunya", "--webhook-url", webhook_url, "--webhook-secret", webhook_secret, "--allow-remote-webhook"]
        if config:
            command += ["--config", config]
        super().__init__(image, publish={self.PORT: host_port}, command=command, **kwargs)

    @property
    def admin_url(self) -> str:
        return self.url("http", self.PORT)

    def ready(self) -> bool:
        return _http_ok(f"{self.admin_url}/admin/health")


class AppContainer(StackContainer):
    """The app (role ``serve``); ready when ``ready_url`` (its ready path, through the ``app`` link) answers."""

    READY = Ready.HTTP_READY

    def __init__(self, image: str, *, app_workers: int, ready_url: str, **kwargs: Any) -> None:
        super().__init__(image, command=["serve", "--workers", str(app_workers)], **kwargs)
        self.ready_url = ready_url

    def ready(self) -> bool:
        return _http_ok(self.ready_url)


class WorkerContainer(StackContainer):
    """A Celery worker (role ``worker``), ready when it logs ``' ready.'`` (again, after a restart)."""

    READY = Ready.LOG_READY

    def __init__(self, image: str, *, concurrency: int, beat: bool = False, **kwargs: Any) -> None:
        schedule = "/tmp/stormproof-beat-schedule" if beat else None  # noqa: S108 - the container's own /tmp
        super().__init__(image, command=["worker", *worker_args(kwargs["service"], concurrency, schedule)], **kwargs)
        self._ready_lines = 0

    def before_start(self) -> None:
        self._ready_lines = self.logs_bytes().count(b" ready.")

    def ready(self) -> bool:
        return self.logs_bytes().count(b" ready.") > self._ready_lines


# -- process faults on containers -------------------------------------------------------------------

class ContainerProcess:
    """A container as a process-fault target (``stormproof.harness.faults.process.ManagedProcess`` and ``Pausable``).

    ``kill`` is ``docker kill`` (SIGKILL to the container's init: everything in it
    dies) and waits for the exit; ``start`` starts the same container again (same
    file system, so PostgreSQL recovers its data; Redis starts empty) and waits
    with the service's own readiness check; ``pause``/``resume`` freeze and thaw
    every process of the container.
    """

    def __init__(self, container: StackContainer, *, kill_timeout: float = 30.0) -> None:
        self.container = container
        self.name = container.service
        self.kill_timeout = kill_timeout

    def _state(self) -> dict[str, Any]:
        wrapped = self.container.wrapped()
        if wrapped is None:
            return {}
        wrapped.reload()
        return dict(wrapped.attrs.get("State") or {})

    @property
    def pid(self) -> int | None:
        """The container's init as the daemon's host sees it, or None when the container is not running."""
        state = self._state()
        return int(state["Pid"]) if state.get("Running") and state.get("Pid") else None

    def kill(self) -> None:
        wrapped = self.container.wrapped()
        if wrapped is None:
            return
        if self._state().get("Paused"):
            wrapped.unpause()
        try:
            wrapped.kill(signal="SIGKILL")
        except Exception as exc:  # noqa: BLE001 - already stopped is killed
            if "is not running" not in str(exc):
                raise
        wrapped.wait(timeout=self.kill_timeout)

    def start(self) -> None:
        wrapped = self.container.wrapped()
        assert wrapped is not None
        self.container.before_start()
        wrapped.start()
        self.container.wait_ready()

    def stop(self) -> None:
        wrapped = self.container.wrapped()
        if wrapped is not None:
            wrapped.stop(timeout=10)

    def pause(self) -> None:
        wrapped = self.container.wrapped()
        assert wrapped is not None
        wrapped.pause()

    def resume(self) -> None:
        wrapped = self.container.wrapped()
        if wrapped is not None and self._state().get("Paused"):
            wrapped.unpause()


#: Runs in the worker container: the PIDs of the prefork pool, i.e. the Celery processes forked by a
#: Celery process that fork nothing themselves (the main process may sit under a wrapper, so "children
#: of PID 1's child" is not enough: it would pick the main process).
_POOL_PIDS = """
import os
parent, celery = {}, set()
for entry in os.listdir('/proc'):
    if entry.isdigit():
        try:
            with open(f'/proc/{entry}/stat') as fh:
                parent[int(entry)] = int(fh.read().rsplit(')', 1)[1].split()[1])
            with open(f'/proc/{entry}/cmdline', 'rb') as fh:
                if b'celery' in fh.read():
                    celery.add(int(entry))
        except (OSError, IndexError, ValueError):
            pass
forking = set(parent.values())
pool = sorted(pid for pid in celery if parent.get(pid) in celery and pid not in forking)
print(' '.join(map(str, pool)))
"""


class ContainerPool:
    """A Celery worker container's first pool process as a fault target (``<worker>-pool``).

    Signalled inside the container through ``docker exec`` (PIDs of the container's
    namespace); the worker replaces a killed pool process itself, so ``start`` does nothing.
    """

    def __init__(self, worker: WorkerContainer) -> None:
        self.worker = worker
        self.name = f"{worker.service}-pool"
        self._paused: int | None = None

    def _exec(self, argv: list[str]) -> str:
        wrapped = self.worker.wrapped()
        if wrapped is None:
            return ""
        code, output = wrapped.exec_run(argv)
        if code != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv[:2])} exited {code}: {output.decode(errors='replace')}")
        return output.decode(errors="replace").strip()

    @property
    def pid(self) -> int | None:
        """The pool process's PID inside the worker's container (None when the container is not running)."""
        wrapped = self.worker.wrapped()
        if wrapped is None:
            return None
        wrapped.reload()
        if wrapped.status != "running" or (wrapped.attrs.get("State") or {}).get("Paused"):
            return None
        pids = self._exec(["python", "-c", _POOL_PIDS]).split()
        return int(pids[0]) if pids else None

    def _signal(self, signal: str, pid: int) -> None:
        self._exec(["sh", "-c", f"kill -{signal} {int(pid)}"])

    def kill(self) -> None:
        pid = self.pid
        if pid is not None:
            self._signal("KILL", pid)

    def start(self) -> None:
        """Nothing to do: the worker's main process replaces a dead pool process itself."""

    def stop(self) -> None:
        self.kill()

    def pause(self) -> None:
        pid = self.pid
        if pid is None:
            raise RuntimeError(f"{self.name}: no pool process is running")
        self._signal("STOP", pid)
        self._paused = pid

    def resume(self) -> None:
        if self._paused is not None:
            try:
                self._signal("CONT", self._paused)
            except RuntimeError:
                pass  # it exited since: nothing to resume
            self._paused = None
