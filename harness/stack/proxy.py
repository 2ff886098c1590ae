"""The fault proxy server as its own process, and the stack's links through it.

Every link of the system goes through a named proxy, so any link can be
faulted through the Toxiproxy API: ``app`` (clients to the app), ``postgres``
and ``redis`` (app and workers to their stores), ``shunya`` (app and workers
to the upstream) and ``webhook`` (the upstream back to the app). The checkers
read PostgreSQL directly, never through a proxy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType

from ..faults.client import ToxiproxyClient
from .readiness import start_and_wait_http
from .ports import free_port
from .process import ManagedProcess
from .recipe import LINKS as RECIPE_LINKS

__all__ = ["FaultProxyProcess", "LINKS"]

#: Proxy name -> what it carries (the recipe's links, :data:`stormproof.harness.stack.recipe.LINKS`).
LINKS = {link.name: link.carries for link in RECIPE_LINKS}


class FaultProxyProcess:
    """``python -m stormproof.harness.faults`` on a free port; :meth:`link` adds a proxy on another free port."""

    def __init__(self, *, base_dir: Path, host: str = "127.0.0.1", port: int | None = None,
                 start_timeout: float = 15.0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.base_dir = base_dir
        self.start_timeout = start_timeout
        self.process: ManagedProcess | None = None
        self._client: ToxiproxyClient | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def client(self) -> ToxiproxyClient:
        if self._client is None:
            self._client = ToxiproxyClient(self.api_url)
        return self._client

    def start(self) -> "FaultProxyProcess":
        argv = [sys.executable, "-m", "stormproof.harness.faults", "--host", self.host, "--port", str(self.port)]
        self.process = ManagedProcess("fault-proxy", argv, log_path=self.base_dir / "fault-proxy.log")
        start_and_wait_http(self.process, f"{self.api_url}/version", service="fault proxy", timeout=self.start_timeout)
        return self

    def link(self, name: str, upstream_port: int, upstream_host: str = "127.0.0.1") -> int:
        """Create proxy ``name`` to ``upstream_host:upstream_port``; return the port it listens on.

        The proxy binds port 0 itself and reports the port, so no other process can take it between.
        """
        info = self.client.create_proxy(name, listen=f"{self.host}:0", upstream=f"{upstream_host}:{upstream_port}")
        return info.port

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> "FaultProxyProcess":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
