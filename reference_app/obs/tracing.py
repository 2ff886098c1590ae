"""Trace ids (plan E1): one id per request, carried into the tasks it enqueues.

The id comes from the caller's ``X-Trace-Id`` (or the trace-id of a W3C
``traceparent``) when well formed, else a new one; it is echoed in the
response, written on every log line, and sent with each Celery task as a
message header, where the worker picks it up again.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

__all__ = ["TRACE_HEADER", "current_trace_id", "set_trace_id", "new_trace_id", "trace_id_from_headers"]

TRACE_HEADER = "X-Trace-Id"
_VALID = re.compile(r"^[A-Za-z0-9_.-]{8,64}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_trace_id: ContextVar[str | None] = ContextVar("trace_id", default=None)


def new_trace_id() -> str:
    return uuid.uuid4().hex


def current_trace_id() -> str | None:
    return _trace_id.get()


def set_trace_id(value: str | None) -> None:
    _trace_id.set(value)


def trace_id_from_headers(get: "callable[[str], str | None]") -> str:  # type: ignore[valid-type]
    given = get(TRACE_HEADER.lower())
    if given and _VALID.match(given):
        return given
    parent = get("traceparent")
    if parent:
        match = _TRACEPARENT.match(parent.strip())
        if match:
            return match.group(1)
    return new_trace_id()
