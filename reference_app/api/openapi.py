"""The OpenAPI document, made to say what the API really answers on error.

FastAPI declares every operation's 422 as ``application/json`` with its own
``HTTPValidationError`` shape, but this app answers every error as
``application/problem+json`` (RFC 9457, :mod:`reference_app.problems`). A
client generated from the document, or a fuzzer validating responses against
it, would be misled; so the document is rewritten once, when first served:
the 422 is replaced and the other problem statuses an ``/api/v1`` operation
can answer are declared, all with the one ``Problem`` schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
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
