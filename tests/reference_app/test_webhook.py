"""The Shunya webhook refuses forged, stale and malformed deliveries with 4xx, counted, never 500."""

from __future__ import annotations

import time

import httpx
import pytest

from stormproof.harness.shunya.signing import sign

from .background import analyses, delivery, metric, shunya_job_id, submit_call


@pytest.fixture(scope="module")
def app(reference_app_module):
    return reference_app_module(task_workers=1, env={"STORMPROOF_POLL_INTERVAL_MS": "60000"},
                                shunya={"complete_after_ms": 60000, "webhook_enabled": False})


@pytest.fixture(scope="module")
def job(app):
    call = submit_call(app, app.tenants[0])
    return call, shunya_job_id(app, call)


def _post(app, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{app.url}/api/v1/shunya/webhook", content=body, headers=headers)


def test_valid_delivery_applies_and_a_replay_is_a_duplicate(app, job) -> None:
    call, job_id = job
    body, headers = delivery(job_id, call, secret=app.webhook_secret)
    first, replay = _post(app, body, headers), _post(app, body, headers)
    assert first.status_code == 200 and first.json()["status"] == "applied"
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"


@pytest.mark.parametrize("case", ["forged", "wrong-secret", "tampered", "stale", "future", "missing", "garbage-ts"])
def test_bad_signatures_are_401(app, job, case) -> None:
    call, job_id = job
    body, headers = delivery(job_id, call, secret=app.webhook_secret)
    if case == "forged":
        headers["X-Shunya-Signature"] = "v1=" + "0" * 64
    elif case == "wrong-secret":
        body, headers = delivery(job_id, call, secret="not-the-secret")
    elif case == "tampered":
        body = body.replace(b'"completed"', b'"failed"', 1)
    elif case == "stale":
        body, headers = delivery(job_id, call, secret=app.webhook_secret, timestamp=int(time.time()) - 3600)
    elif case == "future":
        body, headers = delivery(job_id, call, secret=app.webhook_secret, timestamp=int(time.time()) + 3600)
    elif case == "missing":
        del headers["X-Shunya-Signature"]
    elif case == "garbage-ts":
        headers["X-Shunya-Timestamp"] = "yesterday"
    before = metric(app, "webhook_rejected_total")
    response = _post(app, body, headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert metric(app, "webhook_rejected_total") == before + 1


def test_signed_but_malformed_bodies_are_4xx(app) -> None:
    for body in (b"{not json", b'{"event": "job.completed"}', b'{"event":"x","delivery_id":"d","job_id":"j","status":"completed"}'):
        ts = int(time.time())
        response = _post(app, body, {"X-Shunya-Timestamp": str(ts), "X-Shunya-Signature": sign(app.webhook_secret, ts, body)})
        assert response.status_code in (400, 422), (body, response.text)


def test_unknown_job_is_404(app, job) -> None:
    call, _ = job
    body, headers = delivery("shj_" + "f" * 32, call, secret=app.webhook_secret)
    assert _post(app, body, headers).status_code == 404


def test_oversized_delivery_is_413(app) -> None:
    body = b'{"pad": "' + b"x" * 100_000 + b'"}'
    ts = int(time.time())
    before = metric(app, "webhook_rejected_total", reason="oversized")
    response = _post(app, body, {"X-Shunya-Timestamp": str(ts), "X-Shunya-Signature": sign(app.webhook_secret, ts, body)})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert metric(app, "webhook_rejected_total", reason="oversized") == before + 1


@pytest.mark.parametrize("reason,case", [("bad_signature", "forged"), ("stale", "stale")])
def test_rejections_are_counted_by_reason(app, job, reason, case) -> None:
    call, job_id = job
    if case == "forged":
        body, headers = delivery(job_id, call, secret="forged-secret")
    else:
        body, headers = delivery(job_id, call, secret=app.webhook_secret, timestamp=int(time.time()) - 3600)
    before = metric(app, "webhook_rejected_total", reason=reason)
    assert _post(app, body, headers).status_code == 401
    assert metric(app, "webhook_rejected_total", reason=reason) == before + 1


def test_a_replayed_delivery_is_counted_and_never_applied_again(app, job) -> None:
    """A replay is authentic, so it is not refused: it answers ``duplicate`` and counts a dedupe hit."""
    call, job_id = job
    body, headers = delivery(job_id, call, secret=app.webhook_secret)
    _post(app, body, headers)
    before = metric(app, "webhook_dedupe_hits_total", source="webhook")
    for _ in range(3):
        replay = _post(app, body, headers)
        assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert metric(app, "webhook_dedupe_hits_total", source="webhook") == before + 3
    assert analyses(app, job_id) == 1
