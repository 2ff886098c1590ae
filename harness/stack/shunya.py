"""The Shunya stub as its own process (``python -m stormproof.harness.shunya``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .readiness import RestartsReady, http_ok
from .ports import free_port
from .process import ManagedProcess
from .service import Service

__all__ = ["ShunyaStubProcess"]


class ShunyaStubProcess(Service):
    """``python -m stormproof.harness.shunya``, ready when its admin health endpoint answers."""

    kind = "shunya"

    def __init__(
        self,
        *,
        webhook_url: str,
        webhook_secret: str,
        config: Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        base_dir: Path | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        super().__init__(base_dir=base_dir)
        self.host = host
        self.port = port or free_port(host)
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.config = dict(config or {})
        self.start_timeout = start_timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ShunyaStubProcess":
        self._run_dir()
        argv = [
            sys.executable, "-m", "stormproof.harness.shunya", "--host", self.host, "--port", str(self.port),
            "--webhook-url", self.webhook_url, "--webhook-secret", self.webhook_secret,
        ]
        if self.config:
            argv += ["--config", json.dumps(self.config)]
        self.process = ManagedProcess("shunya", argv, log_path=self.base_dir / "shunya.log")
        self.fault_target().start()
        return self

    def fault_target(self) -> RestartsReady:
        """The stub's process as a fault target; its first start and a kill's restart both end once it is healthy."""
        assert self.process is not None, "the Shunya stub is not started"
        url = f"{self.url}/admin/health"
        return RestartsReady(self.process, http_ok(url), service="Shunya stub", what=url, timeout=self.start_timeout)
