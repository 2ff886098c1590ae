"""What a scenario run needs from the system under test, whoever started it.

:class:`~stormproof.harness.stack.local.LocalStack` (everything started here), a
``DockerStack`` and :class:`ExternalSystem` (the user's own running backend
plus its database) all offer it, so the runner drives any of them the same way.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from .errors import StackError

__all__ = ["SystemUnderTest", "ExternalSystem"]


class SystemUnderTest(Protocol):
    #: Where load clients send requests (through the ``app`` proxy when there is one).
    app_url: str
    #: The app's Prometheus endpoint, reached directly.
    metrics_url: str
    #: A libpq DSN to read the final state, never through a proxy.
    check_dsn: str
    #: The Shunya stub's base URL, or None when there is no stub.
    shunya_admin_url: str | None
    #: The Toxiproxy-API server of the links, or None when links are not proxied.
    proxy_api_url: str | None
    #: Seeded tenants (``SeededTenant``): ids and tokens.
    tenants: list[Any]
    webhook_secret: str
    log_dir: Path | None

    def fault_targets(self) -> dict[str, Any]:
        """Processes that process faults may act on, by name."""


class ExternalSystem:
    """A backend already running elsewhere (the user's own), given as a URL and a database URL.

    The database must hold the contract's schema (docs/API.md; ``python -m
    stormproof.reference_app migrate`` creates it); tenants are seeded into it and their
    tokens signed with ``jwt_secret``, which the backend must verify tokens
    with. Nothing is proxied or started here, so a scenario with faults cannot
    run against it.
    """

    proxy_api_url: str | None = None
    shunya_admin_url: str | None = None
    log_dir: Path | None = None

    def __init__(
        self,
        *,
        app_url: str,
        database_url: str,
        jwt_secret: str,
        webhook_secret: str = "",
        tenants: int = 2,
        reps: int = 3,
        appointments: int = 5,
    ) -> None:
        self.app_url = app_url.rstrip("/")
        self.metrics_url = f"{self.app_url}/metrics"
        self.database_url = database_url
        self.jwt_secret = jwt_secret
        self.webhook_secret = webhook_secret
        self._counts = (tenants, reps, appointments)
        self.tenants: list[Any] = []
        self.ready_after_s = 0.0

    @property
    def check_dsn(self) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        parts = {"host": url.host, "port": url.port, "user": url.username, "password": url.password,
                 "dbname": url.database}
        return " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)

    def fault_targets(self) -> dict[str, Any]:
        return {}

    def start(self) -> "ExternalSystem":
        import httpx

        from stormproof.reference_app.seed import seed
        from stormproof.reference_app.settings import Settings

        started = time.monotonic()
        try:
            ready = httpx.get(f"{self.app_url}/readyz", timeout=5)
        except httpx.HTTPError as exc:
            raise StackError(f"the app at {self.app_url} does not answer ({exc}); is it running?") from exc
        if ready.status_code != 200:
            raise StackError(f"the app at {self.app_url} is not ready: GET /readyz answered {ready.status_code}")
        tenants, reps, appointments = self._counts
        settings = Settings(database_url=self.database_url, redis_url="redis://unused", environment="test",
                            jwt_secret=self.jwt_secret)
        try:
            self.tenants = seed(settings, tenants=tenants, reps=reps, appointments=appointments)
        except Exception as exc:  # noqa: BLE001 - named, with the fix
            raise StackError(
                f"could not seed tenants into {self.database_url}: {exc}. The database needs the contract's "
                "schema: run `python -m stormproof.reference_app migrate` against it"
            ) from exc
        self.ready_after_s = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Nothing was started here: the seeded tenants stay, for the record."""

    def __enter__(self) -> "ExternalSystem":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
