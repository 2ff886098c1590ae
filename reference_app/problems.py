"""Errors as ``application/problem+json`` (RFC 9457), from one table of fixed kinds.

Every error the API can answer is a row of :data:`KINDS`; routes raise
:class:`Problem` with a kind and a detail, and one function writes it. A 4xx
here is a definite answer ("not applied"), which the harness's history relies on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

__all__ = ["Problem", "ProblemKind", "KINDS", "problem_response", "PROBLEM_JSON"]

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemKind:
    slug: str
    status: int
    title: str


KINDS: dict[str, ProblemKind] = {
    k.slug: k
    for k in (
        ProblemKind("malformed-request", 400, "Malformed request"),
        ProblemKind("idempotency-key-missing", 400, "Idempotency-Key header required"),
        ProblemKind("idempotency-key-invalid", 400, "Idempotency-Key header invalid"),
        ProblemKind("unauthenticated", 401, "Authentication required"),
        ProblemKind("forbidden", 403, "Forbidden"),
        ProblemKind("not-found", 404, "Not Found"),
        ProblemKind("method-not-allowed", 405, "Method Not Allowed"),
        ProblemKind("active-session-exists", 409, "An active recording session exists"),
        ProblemKind("appointment-already-assigned", 409, "Appointment already assigned"),
        ProblemKind("rep-double-booked", 409, "Rep already booked in that window"),
        ProblemKind("idempotency-key-in-flight", 409, "A request with this key is in progress"),
        ProblemKind("resource-busy", 409, "Resource busy, retry"),
        ProblemKind("conflict", 409, "Conflict"),
        ProblemKind("consent-required", 409, "Consent required"),
        ProblemKind("deletion-not-pending", 409, "Deletion request is not pending"),
        ProblemKind("payload-too-large", 413, "Payload Too Large"),
        ProblemKind("unsupported-media-type", 415, "Unsupported Media Type"),
        ProblemKind("idempotency-key-mismatch", 422, "Idempotency-Key reused with another payload"),
        ProblemKind("validation-error", 422, "Validation error"),
        ProblemKind("confirmation-token-invalid", 422, "Confirmation token does not match"),
        ProblemKind("rate-limited", 429, "Too Many Requests"),
        ProblemKind("internal-error", 500, "Internal Server Error"),
        ProblemKind("unavailable", 503, "Service Unavailable"),
    )
}


class Problem(Exception):
    """Raise to answer with a problem document of ``kind``."""

    def __init__(
        self,
        kind: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.kind = KINDS[kind]
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
        super().__init__(f"{kind}: {detail}")

    @property
    def status(self) -> int:
        return self.kind.status

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": f"https://stormproof.dev/problems/{self.kind.slug}",
            "title": self.kind.title,
            "status": self.kind.status,
        }
        if self.detail:
            doc["detail"] = self.detail
        doc.update(self.extra)
        return doc

    def body(self) -> bytes:
        return json.dumps(self.document(), separators=(",", ":"), default=str).encode()

    def response(self) -> Response:
        return problem_response(self)


def problem_response(problem: Problem) -> Response:
    return Response(
        content=problem.body(),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )
