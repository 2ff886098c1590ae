"""Toxiproxy's HTTP API (routes, JSON shapes, status codes) over our proxies.

Transport-free: ``ToxiproxyApi.handle`` maps (method, path, body) to a
``Response`` so the routing is testable without sockets and the HTTP layer
stays a dumb pipe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from stormproof.harness.faults import errors
from stormproof.harness.faults.collection import ProxyCollection, ProxySpec
from stormproof.harness.faults.errors import ApiError
from stormproof.harness.faults.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from stormproof.harness.faults.metrics import render_metrics

__all__ = ["API_VERSION", "Response", "ToxiproxyApi"]

#: The Toxiproxy API level we implement, plus build metadata naming us, so a
#: semver-parsing client sees a 2.x server and a human sees what it really is.
API_VERSION = "2.12.0+stormproof"

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP response."""

    status: int
    body: bytes = b""
    content_type: str = JSON


def _json(status: int, value: Any) -> Response:
    return Response(status, json.dumps(value, separators=(",", ":")).encode())


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(str(exc)) from None


Handler = Callable[..., Awaitable[Response]]


class ToxiproxyApi:
    """Routes requests to the proxy collection."""

    def __init__(self, proxies: ProxyCollection | None = None) -> None:
        self.proxies = proxies if proxies is not None else ProxyCollection()
        # (pattern, {method: handler}) in gorilla/mux registration order
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"/reset"), {"POST": self.reset}),
            (re.compile(r"/proxies"), {"GET": self.proxy_index, "POST": self.proxy_create}),
            (re.compile(r"/populate"), {"POST": self.populate}),
            (
                re.compile(r"/proxies/([^/]+)"),
                {"GET": self.proxy_show, "POST": self.proxy_update, "PATCH": self.proxy_update,
                 "DELETE": self.proxy_delete},
            ),
            (re.compile(r"/proxies/([^/]+)/toxics"), {"GET": self.toxic_index, "POST": self.toxic_create}),
            (
                re.compile(r"/proxies/([^/]+)/toxics/([^/]+)"),
                {"GET": self.toxic_show, "POST": self.toxic_update, "PATCH": self.toxic_update,
                 "DELETE": self.toxic_delete},
            ),
            (re.compile(r"/version"), {"GET": self.version}),
            (re.compile(r"/metrics"), {"GET": self.metrics}),
        ]

    async def handle(self, method: str, path: str, body: bytes = b"", user_agent: str = "") -> Response:
        """Dispatch one request; every failure becomes a JSON error response."""
        if user_agent.startswith("Mozilla/"):
            # Toxiproxy refuses browsers so a web page cannot drive it (CSRF).
            return Response(403, ApiError("User agent not allowed", 403).body())
        path = path.split("?", 1)[0]
        try:
            for pattern, methods in self._routes:
                match = pattern.fullmatch(path)
                if match is None:
                    continue
                handler = methods.get(method.upper())
                if handler is None:
                    raise ApiError(f"method {method} not allowed on {path}", 405)
                args = [unquote(group) for group in match.groups()]
                return await handler(*args, body=body)
            raise ApiError(f"no route for {path}", 404)
        except ApiError as exc:
            return Response(exc.status, exc.body())
        except Exception as exc:  # never leak a traceback to the client
            return Response(500, ApiError(f"internal error: {type(exc).__name__}: {exc}", 500).body())

    # -- proxies -------------------------------------------------------------
    async def proxy_index(self, *, body: bytes) -> Response:
        return _json(200, {name: p.to_json() for name, p in self.proxies.all().items()})

    async def proxy_create(self, *, body: bytes) -> Response:
        spec = ProxySpec.from_json(_decode(body))
        proxy = await self.proxies.add(spec)
        return _json(201, proxy.to_json())

    async def populate(self, *, body: bytes) -> Response:
        try:
            created = await self.proxies.populate(_decode(body))
        except ApiError as exc:
            return _json(exc.status, {**exc.to_json(), "proxies": None})
        return _json(201, {"proxies": [p.to_json() for p in created]})

    async def proxy_show(self, name: str, *, body: bytes) -> Response:
        return _json(200, self.proxies.get(name).to_json())

    async def proxy_update(self, name: str, *, body: bytes) -> Response:
        proxy = self.proxies.get(name)
        data = _decode(body)
        if not isinstance(data, dict):
            raise errors.bad_request("expected a JSON object")
        merged = {"name": name, "listen": proxy.listen, "upstream": proxy.upstream, "enabled": proxy.enabled}
        merged.update({k: v for k, v in data.items() if k in ("listen", "upstream", "enabled") and v is not None})
        spec = ProxySpec.from_json(merged)
        await proxy.update(spec.listen, spec.upstream, spec.enabled)
        return _json(200, proxy.to_json())

    async def proxy_delete(self, name: str, *, body: bytes) -> Response:
        await self.proxies.remove(name)
        return Response(204)

    # -- toxics --------------------------------------------------------------
    async def toxic_index(self, name: str, *, body: bytes) -> Response:
        proxy = self.proxies.get(name)
        return _json(200, [entry.to_json() for entry in proxy.toxics.entries()])

    async def toxic_create(self, name: str, *, body: bytes) -> Response:
        entry = self.proxies.get(name).toxics.add_json(body)
        return _json(200, entry.to_json())

    async def toxic_show(self, name: str, toxic: str, *, body: bytes) -> Response:
        return _json(200, self.proxies.get(name).toxics.get(toxic).to_json())

    async def toxic_update(self, name: str, toxic: str, *, body: bytes) -> Response:
        entry = self.proxies.get(name).toxics.update_json(toxic, body)
        return _json(200, entry.to_json())

    async def toxic_delete(self, name: str, toxic: str, *, body: bytes) -> Response:
        self.proxies.get(name).toxics.remove(toxic)
        return Response(204)

    # -- server --------------------------------------------------------------
    async def reset(self, *, body: bytes) -> Response:
        await self.proxies.reset()
        return Response(204)

    async def version(self, *, body: bytes) -> Response:
        text = json.dumps({"version": API_VERSION}) + "\n"
        return Response(200, text.encode(), "application/json;charset=utf-8")

    async def metrics(self, *, body: bytes) -> Response:
        text = render_metrics(self.proxies.all().values())
        return Response(200, text.encode(), METRICS_CONTENT_TYPE)
