"""API errors with Toxiproxy's exact messages and status codes.

Toxiproxy clients branch on the status (409 exists, 404 missing, 400 bad
input), and people grep for the messages, so both are copied verbatim.
"""

from __future__ import annotations

import json

__all__ = [
    "ApiError",
    "bad_request",
    "missing_field",
    "PROXY_NOT_FOUND",
    "PROXY_ALREADY_EXISTS",
    "INVALID_STREAM",
    "INVALID_TOXIC_TYPE",
    "TOXIC_ALREADY_EXISTS",
    "TOXIC_NOT_FOUND",
]


class ApiError(Exception):
    """An error the HTTP API reports as ``{"error": message, "status": code}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, object]:
        """The wire shape, field order as Toxiproxy's ApiError struct."""
        return {"error": self.message, "status": self.status}

    def body(self) -> bytes:
        """Serialised error body (Toxiproxy appends a newline via http.Error)."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode() + b"\n"


def bad_request(detail: str) -> ApiError:
    """``bad request body: <detail>`` (400), Toxiproxy's joinError wrapping."""
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(detail: str) -> ApiError:
    """``missing required field: <detail>`` (400)."""
    return ApiError(f"missing required field: {detail}", 400)


PROXY_NOT_FOUND = ApiError("proxy not found", 404)
PROXY_ALREADY_EXISTS = ApiError("proxy already exists", 409)
INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)
TOXIC_ALREADY_EXISTS = ApiError("toxic already exists", 409)
TOXIC_NOT_FOUND = ApiError("toxic not found", 404)
