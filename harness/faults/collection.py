"""All proxies of one server, guarding name uniqueness (Toxiproxy's ProxyCollection)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stormproof.harness.faults import errors
from stormproof.harness.faults.errors import ApiError
from stormproof.harness.faults.proxy import Proxy

__all__ = ["ProxyCollection", "ProxySpec"]


class ProxySpec:
    """A validated proxy definition from JSON (create or populate input)."""

    __slots__ = ("name", "listen", "upstream", "enabled")

    def __init__(self, name: str, listen: str, upstream: str, enabled: bool) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = enabled

    @classmethod
    def from_json(cls, data: Any, *, where: str = "") -> ProxySpec:
        """Check types and required fields; ``where`` suffixes populate errors."""
        if not isinstance(data, Mapping):
            raise errors.bad_request("expected a JSON object for a proxy")
        for key in ("name", "listen", "upstream"):
            if key in data and data[key] is not None and not isinstance(data[key], str):
                raise errors.bad_request(f"{key} must be a string")
        enabled = data.get("enabled")
        if enabled is None:
            enabled = True
        if not isinstance(enabled, bool):
            raise errors.bad_request("enabled must be a boolean")
        name = data.get("name") or ""
        upstream = data.get("upstream") or ""
        if not name:
            raise errors.missing_field(f"name{where}")
        if not upstream:
            raise errors.missing_field(f"upstream{where}")
        return cls(name, data.get("listen") or "", upstream, enabled)


class ProxyCollection:
    """Name -> Proxy, with the create/replace/remove rules of Toxiproxy."""

    def __init__(self) -> None:
        self._proxies: dict[str, Proxy] = {}

    def all(self) -> dict[str, Proxy]:
        return dict(self._proxies)

    def get(self, name: str) -> Proxy:
        proxy = self._proxies.get(name)
        if proxy is None:
            raise errors.PROXY_NOT_FOUND
        return proxy

    async def add(self, spec: ProxySpec) -> Proxy:
        if spec.name in self._proxies:
            raise errors.PROXY_ALREADY_EXISTS
        proxy = Proxy(spec.name, spec.listen, spec.upstream)
        if spec.enabled:
            await proxy.start()
        self._proxies[spec.name] = proxy
        return proxy

    async def add_or_replace(self, spec: ProxySpec) -> Proxy:
        """Keep an existing proxy with the same listen and upstream, else replace it."""
        existing = self._proxies.get(spec.name)
        if existing is not None:
            if existing.listen == spec.listen and existing.upstream == spec.upstream:
                return existing
            await existing.stop()
            del self._proxies[spec.name]
        return await self.add(spec)

    async def populate(self, items: Any) -> list[Proxy]:
        """Validate every definition first, then apply them in order."""
        if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
            raise errors.bad_request("expected a JSON array of proxies")
        specs = [ProxySpec.from_json(item, where=f" at proxy {i + 1}") for i, item in enumerate(items)]
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise ApiError(f'duplicate proxy name "{spec.name}"', 500)
            seen.add(spec.name)
        return [await self.add_or_replace(spec) for spec in specs]

    async def remove(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self._proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (POST /reset)."""
        for proxy in list(self._proxies.values()):
            await proxy.start()
            proxy.toxics.reset()

    async def clear(self) -> None:
        for name in list(self._proxies):
            await self.remove(name)
