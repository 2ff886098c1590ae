"""The OpenAPI document, made to say what the API really answers on error.

FastAPI declares every operation's 422 as ``application/json`` with its own
``HTTPValidationError`` shape, but this app answers every error as
``application/problem+json`` (RFC 9457, :mod:`stormproof.reference_app.problems`). A
client generated from the document, or a fuzzer validating responses against
it, would be misled; so the document is rewritten once, when first served:
the 422 is replaced and the other problem statuses an ``/api/v1`` operation
can answer are declared, all with the one ``Problem`` schema.

It also declares what a client (and the harness, which derives its probes
from this document) must know to call each operation right, read from the
code rather than listed by hand:

- ``security``: ``bearer`` (an HS256 JWT) on every operation that reads the
  principal, with the role it needs as an OpenAPI 3.1 role name
  (``["manager"]``) where the route requires the manager; ``[]`` on the
  operations that take no token (probes, scrapes, the signed webhook);
- an ``Idempotency-Key`` header parameter on every write that runs through
  :func:`stormproof.reference_app.services.idempotency.run_write`, ``required`` where the
  route requires it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ..problems import KINDS, PROBLEM_JSON

__all__ = ["PROBLEM_SCHEMA", "install_openapi"]

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; some kinds add fields (errors, active_session_id, ...).",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}

#: Statuses any ``/api/v1`` operation may answer: malformed, unauthenticated, forbidden, not found,
#: conflict (including idempotency in flight), too large, unsupported media type, invalid, rate limited.
_API_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 429)
#: Every operation: a body over the limit is refused before routing.
_ALL_STATUSES = (413,)


def _titles(status: int) -> str:
    return "; ".join(sorted(k.slug for k in KINDS.values() if k.status == status)) or "problem"


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": _titles(status),
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


_RUN_WRITE = re.compile(r"run_write\((?P<args>[^)]*)\)")


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found = {dependant.call} if dependant.call is not None else set()
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _idempotency_key(endpoint: Callable[..., Any]) -> bool | None:
    """None when the route takes no Idempotency-Key, else whether it requires one."""
    try:
        source = inspect.getsource(endpoint)
    except (OSError, TypeError):
        return None
    match = _RUN_WRITE.search(source)
    if match is None:
        return None
    return "required=True" in match.group("args")


def _declare_access(doc: dict[str, Any]) -> None:
    from ..services.idempotency import HEADER
    from .deps import get_principal, require_manager
    from .routes import ROUTERS

    doc["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "HS256 JWT with sub, cid (the tenant), role (manager or rep) and exp",
    }
    for route in (route for router in ROUTERS for route in router.routes):
        if not isinstance(route, APIRoute):
            continue
        item = doc.get("paths", {}).get(route.path_format)
        if item is None:
            continue
        deps = _calls(route.dependant)
        security: list[dict[str, list[str]]] = []
        if require_manager in deps:
            security = [{"bearer": ["manager"]}]
        elif get_principal in deps:
            security = [{"bearer": []}]
        key = _idempotency_key(route.endpoint)
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is None:
                continue
            operation["security"] = security
            if key is not None:
                operation.setdefault("parameters", []).append({
                    "name": HEADER, "in": "header", "required": key,
                    "description": "IETF Idempotency-Key: same key and payload replays the stored answer",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                })


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    _declare_access(doc)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in doc.get("paths", {}).items():
        statuses = _API_STATUSES if path.startswith("/api/") else _ALL_STATUSES
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses[str(status)] = _problem_response(status)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_openapi`'s document at ``/openapi.json`` (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
