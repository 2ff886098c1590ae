"""RFC 9457 problem responses (``application/problem+json``).

Why: every error the stub returns, deliberate or not, has one
machine-readable shape, so clients and the app can tell an injected 503 from
a bad request without parsing text, and no traceback ever leaks.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["PROBLEM_CONTENT_TYPE", "problem"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(status: int, detail: str, *, type_: str = "about:blank", **extra: Any) -> JSONResponse:
    """Return a problem response; ``extra`` members (e.g. ``errors``) are added to the body."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE)
