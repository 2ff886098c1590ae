"""Idempotency-Key conformance (plan B1, IETF draft): one row per rule of the protocol."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from .helpers import auth, fire_together, new_key, sql_rows

START = "/api/v1/recordings/sessions/start"


@pytest.fixture(scope="module")
def app(reference_app_module):
    return reference_app_module(env={"STORMPROOF_IDEMPOTENCY_TTL_SECONDS": "2"}, appointments=6)


@pytest.fixture(scope="module")
def slow_app(reference_app_module):
    return reference_app_module(env={"STORMPROOF_RACE_DELAY_MS": "800"}, appointments=2)


def _sessions(app, appointment: str) -> int:
    return sql_rows(app.database_url, "SELECT count(*) FROM recording_sessions WHERE appointment_id = %s", appointment)[0][0]


def test_replay_returns_stored_status_and_body_byte_for_byte(app) -> None:
    tenant = app.tenants[0]
    key, body = new_key(), {"appointment_id": tenant.appointment_ids[0]}
    first = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    again = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    assert first.status_code == 201
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _sessions(app, tenant.appointment_ids[0]) == 1


def test_replay_of_a_stored_conflict_is_the_same_conflict(app) -> None:
    tenant = app.tenants[0]
    appointment = tenant.appointment_ids[1]
    httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()), json={"appointment_id": appointment})
    key = new_key()
    first = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json={"appointment_id": appointment})
    again = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json={"appointment_id": appointment})
    assert first.status_code == again.status_code == 409
    assert again.content == first.content


def test_same_key_other_payload_is_422(app) -> None:
    tenant = app.tenants[0]
    key = new_key()
    first = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json={"appointment_id": tenant.appointment_ids[2]})
    other = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json={"appointment_id": tenant.appointment_ids[3]})
    assert first.status_code == 201
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"].endswith("/idempotency-key-mismatch")
    assert _sessions(app, tenant.appointment_ids[3]) == 0


def test_same_key_on_another_endpoint_is_422(app) -> None:
    tenant = app.tenants[0]
    key = new_key()
    started = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json={"appointment_id": tenant.appointment_ids[4]})
    assert started.status_code == 201
    stop = httpx.post(f"{app.url}/api/v1/recordings/sessions/{started.json()['id']}/stop", headers=auth(tenant.rep_tokens[0], key))
    assert stop.status_code == 422


def test_missing_key_is_400_where_required(app) -> None:
    tenant = app.tenants[0]
    for method, path, body in [
        ("POST", START, {"appointment_id": tenant.appointment_ids[5]}),
        ("POST", f"/api/v1/appointments/{tenant.appointment_ids[5]}/assign", {"rep_id": tenant.rep_ids[0]}),
        ("POST", f"/api/v1/recordings/sessions/{tenant.appointment_ids[5]}/stop", None),
    ]:
        response = httpx.request(method, app.url + path, headers=auth(tenant.manager_token), json=body)
        assert response.status_code == 400, path
        assert response.json()["type"].endswith("/idempotency-key-missing")
    assert _sessions(app, tenant.appointment_ids[5]) == 0


def test_invalid_key_is_400(app) -> None:
    tenant = app.tenants[0]
    response = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], "x" * 300), json={"appointment_id": tenant.appointment_ids[5]})
    assert response.status_code == 400
    assert response.json()["type"].endswith("/idempotency-key-invalid")


def test_legacy_endpoints_take_an_optional_key(app) -> None:
    tenant = app.tenants[1]
    appointment = tenant.appointment_ids[0]
    started = httpx.post(f"{app.url}/api/v1/recordings/start", headers=auth(tenant.rep_tokens[0]), json={"appointment_id": appointment})
    assert started.status_code == 201
    recording = started.json()["recording_id"]
    key = new_key()
    stop1 = httpx.post(f"{app.url}/api/v1/recordings/{recording}/stop", headers=auth(tenant.rep_tokens[0], key))
    stop2 = httpx.post(f"{app.url}/api/v1/recordings/{recording}/stop", headers=auth(tenant.rep_tokens[0], key))
    assert stop1.status_code == 200 and stop1.json()["status"] == "stopped"
    assert stop2.content == stop1.content and stop2.headers["Idempotent-Replayed"] == "true"


def test_expired_key_runs_as_new(app) -> None:
    tenant = app.tenants[1]
    appointment = tenant.appointment_ids[1]
    key, body = new_key(), {"appointment_id": appointment}
    first = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    assert first.status_code == 201
    stopped = httpx.post(f"{app.url}/api/v1/recordings/sessions/{first.json()['id']}/stop", headers=auth(tenant.rep_tokens[0], new_key()))
    assert stopped.status_code == 200
    time.sleep(2.3)
    later = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    assert later.status_code == 201
    assert "Idempotent-Replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]


def test_other_tenants_key_is_independent(app) -> None:
    a, b = app.tenants
    key = new_key()
    mine = httpx.post(app.url + START, headers=auth(a.rep_tokens[1], key), json={"appointment_id": a.appointment_ids[2]})
    assert mine.status_code in (201, 409)
    theirs = httpx.post(app.url + START, headers=auth(b.rep_tokens[0], key), json={"appointment_id": a.appointment_ids[2]})
    assert theirs.status_code == 404, "B's request with A's key must not replay A's response"
    assert "Idempotent-Replayed" not in theirs.headers
    own = httpx.post(app.url + START, headers=auth(b.rep_tokens[0], key), json={"appointment_id": b.appointment_ids[2]})
    assert own.status_code == 422, "B's key is bound to B's first payload, not A's"


def test_concurrent_retry_while_in_flight_is_409(slow_app) -> None:
    tenant = slow_app.tenants[0]
    key, body = new_key(), {"appointment_id": tenant.appointment_ids[0]}
    responses = asyncio.run(
        fire_together(slow_app.url, [("POST", START, auth(tenant.rep_tokens[0], key), body)] * 5)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1
    in_flight = [r for r in responses if r.status_code == 409]
    assert in_flight and all(r.json()["type"].endswith("/idempotency-key-in-flight") for r in in_flight)
    assert all(r.headers.get("Retry-After") == "1" for r in in_flight)
    assert _sessions(slow_app, tenant.appointment_ids[0]) == 1
    replay = httpx.post(slow_app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"


def test_weakened_keys_are_ignored_and_replays_duplicate_effects(reference_app) -> None:
    """The check that proves a harness can see the missing fix: replays are not identical."""
    app = reference_app(("idempotency-keys",))
    tenant = app.tenants[0]
    key, body = new_key(), {"appointment_id": tenant.appointment_ids[0]}
    first = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    again = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    assert first.status_code == 201
    assert again.status_code == 409
    missing = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0]), json={"appointment_id": tenant.appointment_ids[1]})
    assert missing.status_code == 201
