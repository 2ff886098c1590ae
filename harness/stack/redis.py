"""An ephemeral Redis: a free loopback port, no persistence, its own temp dir."""

from __future__ import annotations

import time
from pathlib import Path

import redis
import redis.backoff
import redis.retry

from .binaries import find_redis_server
from .errors import ServiceStartError
from .ports import free_port, start_on_a_free_port, wait_until
from .process import ManagedProcess
from .service import Service

__all__ = ["EphemeralRedis"]


class EphemeralRedis(Service):
    """A throwaway Redis server (starts in about 15 ms). Context manager or start()/stop()."""

    kind = "redis"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        base_dir: Path | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        super().__init__(base_dir=base_dir)
        self.host = host
        self.port = port or free_port(host)
        self._port_is_ours = port is None
        self.start_timeout = start_timeout

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> "redis.Redis":
        """A client that fails fast: redis-py retries for seconds by default."""
        return redis.Redis(
            host=self.host,
            port=self.port,
            db=db,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        )

    def start(self) -> "EphemeralRedis":
        self._run_dir()

        def launch() -> None:
            self.process = ManagedProcess("redis", self._argv(), log_path=self.base_dir / "redis.log")
            self._launch()

        def repick() -> None:
            self.port = free_port(self.host)

        start_on_a_free_port(launch, repick, port_is_ours=self._port_is_ours)
        return self

    def _argv(self) -> list[str]:
        assert self.base_dir is not None
        return [
            find_redis_server(),
            "--bind", self.host,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.base_dir),
            "--databases", "64",
            "--protected-mode", "no",
            "--loglevel", "warning",
        ]

    def _launch(self) -> None:
        assert self.process is not None
        started = time.monotonic()
        self.process.start()
        if not wait_until(self._pings, timeout=self.start_timeout, alive=self.process.running):
            tail = self.process.log_tail()
            self.process.kill()
            raise ServiceStartError(
                "Redis",
                f"no PONG from {self.host}:{self.port} after {time.monotonic() - started:.1f}s",
                tail,
            )

    def _pings(self) -> bool:
        try:
            conn = self.client()
            try:
                return bool(conn.ping())
            finally:
                conn.close()
        except redis.RedisError:
            return False

    def restart(self) -> None:
        """Stop and start on the same port: every key, and so every lock, is lost."""
        assert self.process is not None
        self.process.stop()
        self._launch()

