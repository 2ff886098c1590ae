"""A small typed, synchronous client for the stub's API and admin endpoints.

Why: scenarios and checkers steer the stub (faults, resets, manual
re-delivery) and read what it did; one client with explicit timeouts keeps
that code short and keeps a stuck stub from hanging a run.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Collection, Mapping, TypedDict, cast

import httpx

from .delivery import DeliveryRecord
from .results import AnalysisResult

__all__ = ["DEFAULT_TIMEOUT", "JobCreated", "JobView", "ShunyaStubClient", "ShunyaStubError"]

DEFAULT_TIMEOUT = httpx.Timeout(connect=2.0, read=10.0, write=5.0, pool=2.0)


class JobCreated(TypedDict):
    """Body of ``201`` from ``POST /v1/jobs``."""

    job_id: str
    status: str
    call_id: str
    company_id: str


class JobView(TypedDict):
    """Body of ``GET /v1/jobs/{job_id}``."""

    job_id: str
    status: str
    call_id: str
    company_id: str
    result: AnalysisResult | None
    output_hash: str | None
    error: dict[str, str] | None
    created_at: str
    completed_at: str | None


class ShunyaStubError(Exception):
    """A non-2xx answer; ``problem`` is the problem+json body (or ``{}``)."""

    def __init__(self, status_code: int, problem: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status_code}: {problem.get('detail', '')}")
        self.status_code = status_code
        self.problem = problem


class ShunyaStubClient:
    """Client for one stub at ``base_url`` (e.g. ``RunningStub.url``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # trust_env=False: talk to the stub directly, never via an environment proxy.
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ShunyaStubClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.is_success:
            return response.json()
        try:
            body = response.json()
        except ValueError:
            body = {}
        raise ShunyaStubError(response.status_code, body if isinstance(body, dict) else {})

    # -- Shunya API --------------------------------------------------------------

    def create_job(self, call_id: str, company_id: str, audio_url: str | None = None) -> JobCreated:
        body = {"call_id": call_id, "company_id": company_id, "audio_url": audio_url}
        return cast(JobCreated, self._call("POST", "/v1/jobs", json=body))

    def get_job(self, job_id: str) -> JobView:
        return cast(JobView, self._call("GET", f"/v1/jobs/{job_id}"))

    def wait_for_job(
        self,
        job_id: str,
        statuses: Collection[str] = ("completed", "failed"),
        timeout_s: float = 10.0,
        interval_s: float = 0.02,
    ) -> JobView:
        """Poll until the job reaches one of ``statuses``; raise ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get_job(job_id)
            if job["status"] in statuses:
                return job
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s}s")
            time.sleep(interval_s)

    # -- admin -------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "/admin/config"))

    def set_config(self, changes: Mapping[str, Any] | None = None, **more: Any) -> dict[str, Any]:
        """Partially update the config; returns the full config after the update."""
        patch = {**(changes or {}), **more}
        return cast(dict[str, Any], self._call("POST", "/admin/config", json=patch))

    def reset(self) -> None:
        self._call("POST", "/admin/reset")

    def stats(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "/admin/stats"))

    def deliveries(self, job_id: str | None = None) -> list[DeliveryRecord]:
        params = {"job_id": job_id} if job_id is not None else None
        return cast(list[DeliveryRecord], self._call("GET", "/admin/deliveries", params=params)["deliveries"])

    def calls(self) -> list[tuple[float, str]]:
        """Every API call served: (unix seconds, company id), oldest first."""
        return [(float(at), str(company)) for at, company in self._call("GET", "/admin/calls")["calls"]]

    def jobs(self) -> list[dict[str, Any]]:
        """Admin view of every job, including ``created_seq``/``completed_seq``."""
        return cast(list[dict[str, Any]], self._call("GET", "/admin/jobs")["jobs"])

    def deliver(self, job_id: str) -> DeliveryRecord:
        """Re-deliver a finished job's webhook now; returns the attempt record."""
        return cast(DeliveryRecord, self._call("POST", f"/admin/jobs/{job_id}/deliver"))

    def complete(self, job_id: str) -> JobView:
        """Finish a pending job now (it may fail, per ``fail_rate``)."""
        return cast(JobView, self._call("POST", f"/admin/jobs/{job_id}/complete"))
