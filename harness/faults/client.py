"""Our client for any server speaking Toxiproxy's HTTP API (ours or the real one).

Why not toxiproxy-python?  It works against this API (the test suite proves
it), but it has no timeouts, so a wedged proxy hangs the harness forever, and
it keeps the server address in class-level global state, so two servers in
one process (or parallel tests) trample each other.  This client is an
explicit object with explicit timeouts, typed results and typed errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

__all__ = ["ProxyInfo", "ToxicInfo", "ToxiproxyClient", "ToxiproxyError"]


class ToxiproxyError(Exception):
    """The server answered with an error status (409 exists, 404 missing, 400 bad input)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ToxicInfo:
    """A toxic as the server reports it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicInfo:
        return cls(
            name=data["name"],
            type=data["type"],
            stream=data.get("stream", "downstream"),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass(frozen=True)
class ProxyInfo:
    """A proxy as the server reports it; ``listen`` is the bound address."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicInfo, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyInfo:
        return cls(
            name=data["name"],
            listen=data["listen"],
            upstream=data["upstream"],
            enabled=bool(data["enabled"]),
            toxics=tuple(ToxicInfo.from_json(t) for t in data.get("toxics") or ()),
        )

    @property
    def port(self) -> int:
        """The listen port (handy after creating with port 0)."""
        return int(self.listen.rsplit(":", 1)[1])


class ToxiproxyClient:
    """Typed calls for every Toxiproxy endpoint; one instance per server."""

    def __init__(self, url: str = "http://127.0.0.1:8474", *, timeout: float = 5.0) -> None:
        self._http = httpx.Client(
            base_url=url,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": "stormproof-faults"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise ToxiproxyError(response.status_code, str(message).strip())
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- server --------------------------------------------------------------
    def version(self) -> str:
        return str(self._call("GET", "/version")["version"])

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

    def metrics(self) -> str:
        response = self._http.get("/metrics")
        response.raise_for_status()
        return response.text

    # -- proxies -------------------------------------------------------------
    def list_proxies(self) -> dict[str, ProxyInfo]:
        return {name: ProxyInfo.from_json(p) for name, p in self._call("GET", "/proxies").items()}

    def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", *, enabled: bool = True
    ) -> ProxyInfo:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return ProxyInfo.from_json(self._call("POST", "/proxies", body))

    def populate(self, proxies: Sequence[Mapping[str, Any]]) -> list[ProxyInfo]:
        """Create or replace proxies in bulk (idempotent for unchanged ones)."""
        result = self._call("POST", "/populate", list(proxies))
        return [ProxyInfo.from_json(p) for p in result["proxies"]]

    def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(self._call("GET", f"/proxies/{name}"))

    def update_proxy(
        self, name: str, *, listen: str | None = None, upstream: str | None = None, enabled: bool | None = None
    ) -> ProxyInfo:
        body = {k: v for k, v in (("listen", listen), ("upstream", upstream), ("enabled", enabled)) if v is not None}
        return ProxyInfo.from_json(self._call("POST", f"/proxies/{name}", body))

    def enable_proxy(self, name: str) -> ProxyInfo:
        return self.update_proxy(name, enabled=True)

    def disable_proxy(self, name: str) -> ProxyInfo:
        """Stop listening and close every live connection of the proxy."""
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    # -- toxics --------------------------------------------------------------
    def list_toxics(self, proxy: str) -> list[ToxicInfo]:
        return [ToxicInfo.from_json(t) for t in self._call("GET", f"/proxies/{proxy}/toxics")]

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> ToxicInfo:
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        return ToxicInfo.from_json(self._call("POST", f"/proxies/{proxy}/toxics", body))

    def get_toxic(self, proxy: str, name: str) -> ToxicInfo:
        return ToxicInfo.from_json(self._call("GET", f"/proxies/{proxy}/toxics/{name}"))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        toxicity: float | None = None,
    ) -> ToxicInfo:
        body: dict[str, Any] = {"attributes": dict(attributes or {})}
        if toxicity is not None:
            body["toxicity"] = toxicity
        return ToxicInfo.from_json(self._call("POST", f"/proxies/{proxy}/toxics/{name}", body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")
