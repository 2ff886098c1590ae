"""The reference app's Shunya client against the real Shunya stub: how it reads Shunya's answers."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from stormproof.harness.shunya import start_stub
from stormproof.reference_app.services.rate_limit import Limit
from stormproof.reference_app.services.shunya_client import ShunyaClient, ShunyaRateLimited, ShunyaRejected


def _call(url: str, job_id: str | None = None) -> object:
    async def go() -> object:
        client = ShunyaClient(url, timeout_ms=5000, limiter=None, limit=Limit("shunya", 0, 0),  # type: ignore[arg-type]
                              limited=False)
        try:
            if job_id is None:
                return await client.create_job(company_id=uuid.uuid4(), call_id=uuid.uuid4())
            return await client.get_job(company_id=uuid.uuid4(), job_id=job_id)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_shunyas_429_is_a_rate_limit_to_wait_out_and_its_404_a_refusal() -> None:
    """Shunya's 429 (its quota) is ShunyaRateLimited, which a task waits out and retries (plan C3: a throttled
    task is never dead-lettered for it); a 404 is a refusal no retry mends."""
    with start_stub() as stub:
        created = _call(stub.url)
        assert isinstance(created, dict) and created["job_id"]
        stub.core.jobs.max_jobs = 0  # the stub's job store is full: it answers 429
        with pytest.raises(ShunyaRateLimited) as limited:
            _call(stub.url)
        assert limited.value.retry_after_s >= 1
        with pytest.raises(ShunyaRejected, match="HTTP 404"):
            _call(stub.url, job_id="shj_missing")
