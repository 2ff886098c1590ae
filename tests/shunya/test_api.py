"""The /v1 API and admin plane over real HTTP: lifecycle, faults, validation, reset."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from stormproof.harness.shunya import (
    RunningStub,
    ShunyaStubClient,
    ShunyaStubError,
    StubConfig,
    expected_result,
    failure_draw,
    stuck_draw,
    output_hash,
)

from .conftest import WebhookReceiver, start_test_stub, wait_until

JOB_ID = re.compile(r"^shj_[0-9a-f]{32}$")


def raw(stub: RunningStub) -> httpx.Client:
    return httpx.Client(base_url=stub.url, trust_env=False, timeout=10.0)


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and "detail" in body
    assert "Traceback" not in response.text
    return body


def test_job_lifecycle_pending_then_completed_with_expected_result(client: ShunyaStubClient) -> None:
    client.set_config(complete_after_ms=300)
    created = client.create_job("call-1", "company-a", "https://example.invalid/a.wav")
    assert JOB_ID.match(created["job_id"])
    assert created == {"job_id": created["job_id"], "status": "pending", "call_id": "call-1", "company_id": "company-a"}

    first = client.get_job(created["job_id"])
    assert first["status"] == "pending"
    assert first["result"] is None and first["output_hash"] is None and first["completed_at"] is None

    done = client.wait_for_job(created["job_id"])
    assert done["status"] == "completed"
    assert done["result"] == expected_result(created["job_id"])
    assert done["output_hash"] == output_hash(expected_result(created["job_id"]))
    assert done["error"] is None and done["completed_at"]
    # polling again does not change anything
    assert client.get_job(created["job_id"]) == done


def test_job_ids_are_unique(client: ShunyaStubClient) -> None:
    ids = {client.create_job(f"call-{i}", "co")["job_id"] for i in range(30)}
    assert len(ids) == 30 and all(JOB_ID.match(i) for i in ids)


def test_seeded_job_ids_are_reproducible_across_processes_but_unique_within_one(receiver: WebhookReceiver) -> None:
    def ids_from_fresh_stub() -> list[str]:
        with start_test_stub(receiver) as stub, ShunyaStubClient(stub.url) as c:
            c.set_config(seed=42)
            first = [c.create_job(f"call-{i}", "co")["job_id"] for i in range(3)]
            c.reset()
            c.set_config(seed=42)
            second = [c.create_job(f"call-{i}", "co")["job_id"] for i in range(3)]
            assert not set(first) & set(second)
            return first + second

    assert ids_from_fresh_stub() == ids_from_fresh_stub()


def test_unknown_job_is_404_problem(stub: RunningStub) -> None:
    with raw(stub) as http:
        body = assert_problem(http.get("/v1/jobs/shj_" + "0" * 32), 404)
    assert "shj_" in body["detail"]


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"[" * 20_000 + b"]" * 20_000, 400, None),
        (b'{"call_id": "' + b"x" * 70_000 + b'", "company_id": "co"}', 413, None),
        (b'{"call_id": "' + b"x" * 2_000 + b'", "company_id": "co"}', 422, "call_id"),
        (b"[1, 2]", 422, None),
        (b'{"company_id": "co"}', 422, "call_id"),
        (b'{"call_id": "", "company_id": "co"}', 422, "call_id"),
        (b'{"call_id": "c", "company_id": 5}', 422, "company_id"),
        (b'{"call_id": "c", "company_id": "co", "audio_url": 3}', 422, "audio_url"),
    ],
)
def test_bad_job_requests_get_4xx_problems(stub: RunningStub, content: bytes, status: int, field: str | None) -> None:
    with raw(stub) as http:
        body = assert_problem(http.post("/v1/jobs", content=content, headers={"Content-Type": "application/json"}), status)
    if field is not None:
        assert field in body["errors"]


def test_unknown_route_and_wrong_method_are_problems(stub: RunningStub) -> None:
    with raw(stub) as http:
        assert_problem(http.get("/v2/nothing"), 404)
        response = http.delete("/v1/jobs")
        assert_problem(response, 405)
        assert "POST" in response.headers["allow"]


def test_error_rate_one_fails_every_api_call_and_zero_fails_none(client: ShunyaStubClient, stub: RunningStub) -> None:
    client.set_config(error_rate=1.0)
    with raw(stub) as http:
        for _ in range(10):
            body = assert_problem(http.post("/v1/jobs", json={"call_id": "c", "company_id": "co"}), 503)
            assert body["type"] == "urn:shunya-stub:injected-fault"
        assert_problem(http.get("/v1/jobs/shj_missing"), 503)
    stats = client.stats()
    assert stats["api_errors_injected"] == 11 and stats["api_calls"] == 11
    # split by route, so that an app's count by endpoint (plan E2) can be compared
    assert stats["api_errors_by_route"] == {"POST /v1/jobs": 10, "GET /v1/jobs/{job_id}": 1}
    assert stats["jobs_created"] == 0, "an injected fault must not create a job"
    # admin endpoints are never faulted
    assert client.get_config()["error_rate"] == 1.0

    client.set_config(error_rate=0.0, error_status=502)
    for i in range(20):
        client.create_job(f"c{i}", "co")
    stats = client.stats()
    assert stats["api_errors_injected"] == 11 and stats["jobs_created"] == 20

    client.set_config(error_rate=1.0)
    with pytest.raises(ShunyaStubError) as info:
        client.create_job("c", "co")
    assert info.value.status_code == 502


def test_error_status_429_is_shunyas_quota_with_a_retry_after(client: ShunyaStubClient, stub: RunningStub) -> None:
    """Shunya's own quota: a 429 the app must wait out (Retry-After) and retry, never take for a refusal."""
    client.set_config(error_rate=1.0, error_status=429)
    with raw(stub) as http:
        response = http.post("/v1/jobs", json={"call_id": "c", "company_id": "co"})
        assert_problem(response, 429)
        assert response.headers["retry-after"] == "1"
    client.set_config(error_status=503)
    with raw(stub) as http:
        outage = http.get("/v1/jobs/shj_missing")
        assert_problem(outage, 503)
        assert "retry-after" not in outage.headers


def test_reject_and_garbage_rates_answer_a_refusal_or_a_body_that_is_no_object(client: ShunyaStubClient,
                                                                              stub: RunningStub) -> None:
    """``reject_rate``: a 422 problem (the work refused); ``garbage_rate``: 200 with a JSON array. Both count as
    errors the stub answered (by route too), neither creates a job; an error_status answer comes first."""
    client.set_config(reject_rate=1.0)
    with raw(stub) as http:
        body = assert_problem(http.post("/v1/jobs", json={"call_id": "c", "company_id": "co"}), 422)
        assert body["type"] == "urn:shunya-stub:injected-refusal"
    client.set_config(reject_rate=0.0, garbage_rate=1.0)
    with raw(stub) as http:
        answer = http.get("/v1/jobs/shj_missing")
        assert answer.status_code == 200 and answer.json() == ["injected", "not an object"]
    client.set_config(garbage_rate=1.0, error_rate=1.0)
    with raw(stub) as http:
        assert_problem(http.post("/v1/jobs", json={"call_id": "c", "company_id": "co"}), 503)
    stats = client.stats()
    assert (stats["api_refusals_injected"], stats["api_garbage_injected"], stats["api_errors_injected"]) == (1, 1, 3)
    assert stats["api_errors_by_route"] == {"POST /v1/jobs": 2, "GET /v1/jobs/{job_id}": 1}
    assert stats["jobs_created"] == 0
    client.set_config(error_rate=0.0, garbage_rate=0.25, reject_rate=0.25)
    with raw(stub) as http:
        statuses = [http.post("/v1/jobs", json={"call_id": f"c{i}", "company_id": "co"}).status_code
                    for i in range(60)]
    assert set(statuses) == {200, 201, 422}, statuses  # drawn: some of each


def test_partial_error_rate_is_seeded_and_reproducible(client: ShunyaStubClient, stub: RunningStub) -> None:
    def pattern() -> list[int]:
        client.reset()
        client.set_config(error_rate=0.5, seed=1234)
        with raw(stub) as http:
            return [http.get("/v1/jobs/shj_" + "1" * 32).status_code for _ in range(40)]

    first = pattern()
    assert set(first) == {404, 503}
    assert pattern() == first


def test_error_first_fails_exactly_the_next_calls_each_time_it_is_set(client: ShunyaStubClient,
                                                                       stub: RunningStub) -> None:
    """A replay makes a task fail as often as it did in the run, whatever the rate would have drawn."""
    client.set_config(error_first=3, error_status=502)
    with raw(stub) as http:
        assert [http.get("/v1/jobs/shj_" + "1" * 32).status_code for _ in range(5)] == [502, 502, 502, 404, 404]
        client.set_config(error_first=2)  # set again: counted again
        assert [http.get("/v1/jobs/shj_" + "1" * 32).status_code for _ in range(3)] == [502, 502, 404]


def test_latency_slows_api_but_not_admin(client: ShunyaStubClient) -> None:
    # Wide apart (2 s against a 1.5 s bound) so that a busy CI machine's slow admin call is not taken for latency.
    client.set_config(latency_ms=2000, latency_jitter_ms=0)
    start = time.monotonic()
    client.create_job("c", "co")
    assert time.monotonic() - start >= 1.95
    start = time.monotonic()
    client.stats()
    assert time.monotonic() - start < 1.5


def test_fail_rate_one_fails_every_job(client: ShunyaStubClient) -> None:
    client.set_config(complete_after_ms=0, fail_rate=1.0)
    ids = [client.create_job(f"c{i}", "co")["job_id"] for i in range(5)]
    for job_id in ids:
        job = client.wait_for_job(job_id)
        assert job["status"] == "failed"
        assert job["result"] is None and job["output_hash"] is None
        assert job["error"]["code"] == "analysis_failed"
    assert client.stats()["jobs_failed"] == 5


def test_partial_fail_rate_follows_failure_draw(client: ShunyaStubClient) -> None:
    client.set_config(complete_after_ms=0, fail_rate=0.5)
    ids = [client.create_job(f"c{i}", "co")["job_id"] for i in range(40)]
    statuses = {job_id: client.wait_for_job(job_id)["status"] for job_id in ids}
    predicted = {job_id: "failed" if failure_draw(job_id) < 0.5 else "completed" for job_id in ids}
    assert statuses == predicted
    assert set(statuses.values()) == {"completed", "failed"}


def test_stuck_rate_leaves_drawn_jobs_pending_for_good(client: ShunyaStubClient) -> None:
    """A stuck job (stuck_draw below stuck_rate) never finishes: pending past its due time, no result, marked
    ``stuck`` in the admin view and counted; the others finish as usual; the admin may still complete it."""
    client.set_config(complete_after_ms=0, stuck_rate=0.5)
    ids = [client.create_job(f"c{i}", "co")["job_id"] for i in range(30)]
    stuck = {job_id for job_id in ids if stuck_draw(job_id) < 0.5}
    assert stuck and stuck != set(ids)
    for job_id in set(ids) - stuck:
        assert client.wait_for_job(job_id)["status"] == "completed"
    wait_until(lambda: client.stats()["jobs_stuck"] == len(stuck))
    views = {job["job_id"]: job for job in client.jobs()}
    assert {job_id for job_id in ids if views[job_id]["stuck"]} == stuck
    assert all(client.get_job(job_id)["status"] == "pending" for job_id in stuck)


def test_admin_config_validation_errors(client: ShunyaStubClient, stub: RunningStub) -> None:
    with raw(stub) as http:
        body = assert_problem(http.post("/admin/config", json={"error_rate": 1.5, "latency_ms": -1, "x": 1}), 422)
        assert set(body["errors"]) == {"error_rate", "latency_ms", "x"}
        assert_problem(http.post("/admin/config", content=b"nope"), 400)
        assert_problem(http.post("/admin/config", json=[1]), 422)
    assert client.get_config()["error_rate"] == 0.0, "a rejected patch changes nothing"
    updated = client.set_config(complete_after_ms=0, webhook_duplicates=2)
    assert updated["complete_after_ms"] == 0 and updated["webhook_duplicates"] == 2
    assert client.get_config() == updated


def test_manual_complete_and_conflicts(client: ShunyaStubClient) -> None:
    client.set_config(complete_after_ms=3_600_000)
    job_id = client.create_job("c", "co")["job_id"]
    with pytest.raises(ShunyaStubError) as info:
        client.deliver(job_id)
    assert info.value.status_code == 409
    done = client.complete(job_id)
    assert done["status"] == "completed" and done["result"] == expected_result(job_id)
    with pytest.raises(ShunyaStubError) as info:
        client.complete(job_id)
    assert info.value.status_code == 409
    with pytest.raises(ShunyaStubError) as info:
        client.complete("shj_" + "f" * 32)
    assert info.value.status_code == 404


def test_reset_clears_jobs_deliveries_stats_and_config(client: ShunyaStubClient, receiver: WebhookReceiver) -> None:
    client.set_config(complete_after_ms=0, latency_ms=5, seed=9)
    job_id = client.create_job("c", "co")["job_id"]
    client.wait_for_job(job_id)
    receiver.wait_for(1)
    wait_until(lambda: len(client.deliveries()) == 1)
    assert client.stats()["jobs_created"] == 1

    client.reset()
    assert client.get_config() == StubConfig().to_dict()
    assert client.jobs() == [] and client.deliveries() == []
    assert all(not value for value in client.stats().values())  # 0, or an empty split by route
    with pytest.raises(ShunyaStubError) as info:
        client.get_job(job_id)
    assert info.value.status_code == 404


def test_stub_stops_cleanly_and_frees_its_port(receiver: WebhookReceiver) -> None:
    stub = start_test_stub(receiver)
    with ShunyaStubClient(stub.url) as c:
        c.set_config(complete_after_ms=3_600_000, webhook_delay_ms=3_600_000)
        c.create_job("c", "co")
    stub.stop(timeout_s=10)
    assert not stub.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(stub.url + "/admin/health", trust_env=False, timeout=2)


def test_every_job_creation_and_poll_is_logged_with_its_tenant(client: ShunyaStubClient) -> None:
    """``GET /admin/calls``: when each API call arrived and for whom (the app's per-tenant Shunya limit is judged
    on it); admin calls and unknown jobs are not logged, and a reset forgets it."""
    before = time.time()
    job = client.create_job("c1", "tenant-a")["job_id"]
    client.create_job("c2", "tenant-b")
    client.get_job(job)
    with pytest.raises(ShunyaStubError):
        client.get_job("shj_" + "0" * 32)
    client.stats()
    calls = client.calls()
    assert [who for _, who in calls] == ["tenant-a", "tenant-b", "tenant-a"]
    assert all(before <= at <= time.time() for at, _ in calls)
    assert [at for at, _ in calls] == sorted(at for at, _ in calls)
    client.reset()
    assert client.calls() == []
