"""The app's client for Shunya, the external analysis service.

Every call has a timeout and is counted on failure (``shunya_api_errors_total``
by endpoint and kind), and is subject to the tenant's Shunya rate limit.
Errors are split into :class:`ShunyaUnavailable` (5xx, timeouts, resets: worth
a retry) and :class:`ShunyaRejected` (4xx: retrying will not help).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from ..obs.metrics import METRICS
from ..obs.tracing import TRACE_HEADER, current_trace_id
from .rate_limit import Limit, RateLimiter

__all__ = ["ShunyaClient", "ShunyaError", "ShunyaUnavailable", "ShunyaRejected", "ShunyaRateLimited"]


class ShunyaError(Exception):
    """Base: a Shunya call did not give a usable answer."""


class ShunyaUnavailable(ShunyaError):
    """5xx, timeout or connection error: the call may be retried."""


class ShunyaRejected(ShunyaError):
    """A 4xx from Shunya: the request itself is wrong; retrying will not help."""


class ShunyaRateLimited(ShunyaError):
    """The tenant's Shunya allowance is used up; retry after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"tenant Shunya rate limit reached; retry in {retry_after_s}s")


def _retry_after_s(value: str | None) -> int:
    """Shunya's Retry-After as whole seconds (at least 1; an HTTP-date or nothing reads as 1)."""
    try:
        return max(1, int(value or "1"))
    except ValueError:
        return 1


class ShunyaClient:
    def __init__(self, base_url: str, *, timeout_ms: int, limiter: RateLimiter, limit: Limit,
                 limited: bool = True, count_error_answers: bool = True, one_error_endpoint: bool = False,
                 refuse_429: bool = False, check_refusals: bool = True, check_shape: bool = True,
                 only_200: bool = False) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_ms / 1000),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        )
        self._limiter = limiter
        self._limit = limit
        #: False only under the weakening shunya-limit: calls go out at whatever rate the tasks run.
        self._limited = limited
        #: False only under the weakening shunya-failure-metrics: an answer with an error status goes uncounted.
        self._count_error_answers = count_error_answers
        #: True only under the weakening shunya-error-endpoint: every error is counted under create_job.
        self._one_error_endpoint = one_error_endpoint
        #: True only under the weakening shunya-429-refused: Shunya's quota answer taken for a refusal.
        self._429_refused = refuse_429
        #: False only under the weakening shunya-refusal-checked: a 4xx's problem body is read as the answer.
        self._check_refusals = check_refusals
        #: False only under the weakening shunya-answer-shape-checked: JSON that is not an object is used as is.
        self._check_shape = check_shape
        #: True only under the weakening shunya-created-refused: a success other than 200 (a 201) is a refusal.
        self._only_200 = only_200

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_job(self, *, company_id: uuid.UUID, call_id: uuid.UUID) -> dict[str, Any]:
        body = {"call_id": str(call_id), "company_id": str(company_id), "audio_url": None}
        return await self._call("create_job", company_id, "POST", "/v1/jobs", json=body)

    async def get_job(self, *, company_id: uuid.UUID, job_id: str) -> dict[str, Any]:
        return await self._call("get_job", company_id, "GET", f"/v1/jobs/{job_id}")

    async def _call(self, endpoint: str, company_id: uuid.UUID, method: str, path: str, **kw: Any) -> dict[str, Any]:
        if self._limited:
            decision = await self._limiter.check(self._limit, company_id)
            if not decision.allowed:
                raise ShunyaRateLimited(decision.retry_after_s)
        headers = {TRACE_HEADER: current_trace_id() or ""}
        if self._one_error_endpoint:
            endpoint = "create_job"
        try:
            response = await self._http.request(method, path, headers=headers, **kw)
        except httpx.TimeoutException as exc:
            METRICS.shunya_api_errors.labels(endpoint, "timeout").inc()
            raise ShunyaUnavailable(f"{endpoint}: timeout ({exc.__class__.__name__})") from exc
        except httpx.HTTPError as exc:
            METRICS.shunya_api_errors.labels(endpoint, "connection").inc()
            raise ShunyaUnavailable(f"{endpoint}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 500:
            if self._count_error_answers:
                METRICS.shunya_api_errors.labels(endpoint, "5xx").inc()
            raise ShunyaUnavailable(f"{endpoint}: HTTP {response.status_code}")
        # Shunya's own quota: come back later, not a refusal of the work (weakened: taken for one).
        if response.status_code == 429 and not self._429_refused:
            METRICS.shunya_api_errors.labels(endpoint, "4xx").inc()
            raise ShunyaRateLimited(_retry_after_s(response.headers.get("Retry-After")))
        refused = response.status_code >= 400 or (self._only_200 and response.status_code != 200)
        if refused and self._check_refusals:
            METRICS.shunya_api_errors.labels(endpoint, "4xx").inc()
            raise ShunyaRejected(f"{endpoint}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            data = response.json()
        except ValueError as exc:
            METRICS.shunya_api_errors.labels(endpoint, "malformed").inc()
            raise ShunyaUnavailable(f"{endpoint}: response is not JSON") from exc
        if not isinstance(data, dict) and self._check_shape:
            METRICS.shunya_api_errors.labels(endpoint, "malformed").inc()
            raise ShunyaUnavailable(f"{endpoint}: response is not a JSON object")
        return data
