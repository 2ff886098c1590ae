"""The reference app as a uvicorn process, ready when ``/readyz`` says so."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .readiness import RestartsReady, http_ok, start_and_wait
from .ports import free_port
from .process import ManagedProcess
from .service import Service, app_environment

__all__ = ["ReferenceAppProcess"]


class ReferenceAppProcess(Service):
    """``uvicorn stormproof.reference_app.main:create_app --factory`` with the given database, Redis and weakenings.

    The schema must already be migrated (templates make that cheap); the app
    itself only applies the weakenings that live in the schema.
    """

    kind = "app"

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        weakenings: Iterable[str] = (),
        workers: int = 1,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
        start_timeout: float = 90.0,
        command: Sequence[str] | None = None,
        ready_path: str = "/readyz",
    ) -> None:
        """``command`` runs another backend instead of ours (the user's own, implementing the
        contract of docs/API.md): ``{host}`` and ``{port}`` in it are replaced, and it also finds
        them in ``HOST`` and ``PORT``, beside ``DATABASE_URL``, ``REDIS_URL`` and the rest.

        ``start_timeout`` covers a first start and each restart after a kill. 90 s, as for containers: at a
        load average of 15 to 24 on 2 cores (other work beside the run), the reference app took over 30 s to
        answer /readyz and whole runs ended in errors on a correct app; one that dies starting fails at once."""
        super().__init__(base_dir=base_dir)
        self.host = host
        self.port = port or free_port(host)
        self.workers = workers
        self.start_timeout = start_timeout
        self.environment = app_environment(database_url, redis_url, weakenings, env)
        self.command = list(command) if command else None
        self.ready_path = ready_path
        self._launched = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def launch(self) -> None:
        """Spawn the process without waiting for it to serve; :meth:`start` then waits.

        The app's seconds of imports can so overlap the start of what it needs: the reference app
        waits for its database when ``STORMPROOF_DATABASE_WAIT_MS`` is in its environment.
        """
        if self.process is None:
            self.process = self._process()
            self._launched = True
            self.process.start()

    def start(self) -> "ReferenceAppProcess":
        if self._launched and self.process is not None:
            # Launched: only the wait is left (the same check and timeout as a start; a process that
            # died while waiting for its database fails here, with its log).
            self._launched = False
            start_and_wait(self.process, http_ok(f"{self.url}{self.ready_path}"), service=self._service,
                           what=f"{self.url}{self.ready_path}", timeout=self.start_timeout, started=True)
            return self
        self.process = self._process()
        self.fault_target().start()
        return self

    def stop(self) -> None:
        """Stop the app; one launched but never seen ready (a start interrupted, Ctrl-C) is killed.

        It served nothing, so it has nothing to finish, and uvicorn acts on SIGTERM only once its
        workers have imported the app: a Ctrl-C during a replay's start waited 10 s for the kill.
        """
        if self._launched and self.process is not None:
            self._launched = False
            self.process.kill()
        super().stop()

    def _process(self) -> ManagedProcess:
        self._run_dir()
        env = dict(self.environment)
        if self.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in env:
            metrics_dir = self.base_dir / "prometheus"
            metrics_dir.mkdir(exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        env.update(HOST=self.host, PORT=str(self.port))
        if self.command:
            argv = [part.replace("{host}", self.host).replace("{port}", str(self.port)) for part in self.command]
        else:
            argv = [
                sys.executable, "-m", "uvicorn", "stormproof.reference_app.main:create_app", "--factory",
                "--host", self.host, "--port", str(self.port),
                "--workers", str(self.workers), "--log-level", "warning", "--no-access-log",
                # The fault proxy in front of the app connects from 127.0.0.1, which uvicorn trusts by default:
                # a client's X-Forwarded-For would then become the consent evidence's IP (plan F3).
                "--no-proxy-headers",
            ]
        return ManagedProcess("app", argv, log_path=self.base_dir / "app.log", env=env)

    @property
    def _service(self) -> str:
        return "the app command" if self.command else "reference app"

    def fault_target(self) -> RestartsReady:
        """The app's process as a fault target; its first start and a kill's restart both end once it is ready."""
        assert self.process is not None, "the app is not started"
        url = f"{self.url}{self.ready_path}"
        return RestartsReady(self.process, http_ok(url), service=self._service, what=url, timeout=self.start_timeout)

