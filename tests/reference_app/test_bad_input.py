"""Bad input gets a 4xx problem document, never a 500 (and never a traceback)."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from stormproof.reference_app.settings import DEV_JWT_SECRET

from .helpers import auth, new_key


@pytest.fixture(scope="module")
def app(reference_app_module):
    return reference_app_module()


def _problem(response: httpx.Response, status: int, slug: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["status"] == status
    if slug:
        assert doc["type"].endswith("/" + slug), doc


def test_malformed_json_is_400(app) -> None:
    t = app.tenants[0]
    response = httpx.post(
        f"{app.url}/api/v1/recordings/sessions/start",
        headers={**auth(t.rep_tokens[0], new_key()), "Content-Type": "application/json"},
        content=b'{"appointment_id": ',
    )
    _problem(response, 400, "malformed-request")


@pytest.mark.parametrize(
    "body",
    [{"appointment_id": 12}, {}, {"appointment_id": "x", "extra": 1}, [], None, "text"],
    ids=["wrong-type", "missing-field", "unknown-field", "array", "null", "string"],
)
def test_wrong_shapes_are_422(app, body) -> None:
    t = app.tenants[0]
    response = httpx.post(f"{app.url}/api/v1/recordings/sessions/start", headers=auth(t.rep_tokens[0], new_key()), json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_bad_appointment_window_is_422(app) -> None:
    t = app.tenants[0]
    response = httpx.post(
        f"{app.url}/api/v1/appointments",
        headers=auth(t.manager_token),
        json={"title": "x", "starts_at": "2030-01-01T10:00:00Z", "ends_at": "2030-01-01T09:00:00Z"},
    )
    _problem(response, 422, "validation-error")


@pytest.mark.parametrize("ident", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "%27%20OR%201=1"])
def test_unknown_or_malformed_ids_are_404(app, ident) -> None:
    t = app.tenants[0]
    _problem(httpx.get(f"{app.url}/api/v1/appointments/{ident}", headers=auth(t.manager_token)), 404, "not-found")
    _problem(
        httpx.post(f"{app.url}/api/v1/recordings/sessions/{ident}/stop", headers=auth(t.manager_token, new_key())),
        404,
        "not-found",
    )


def test_oversized_body_is_413(app) -> None:
    t = app.tenants[0]
    big = {"appointment_id": "a" * 200_000}
    _problem(
        httpx.post(f"{app.url}/api/v1/recordings/sessions/start", headers=auth(t.rep_tokens[0], new_key()), json=big),
        413,
        "payload-too-large",
    )


def test_oversized_chunked_body_is_413(app) -> None:
    t = app.tenants[0]

    def chunks():
        for _ in range(100):
            yield b"x" * 4096

    response = httpx.post(
        f"{app.url}/api/v1/recordings/sessions/start",
        headers={**auth(t.rep_tokens[0], new_key()), "Content-Type": "application/json"},
        content=chunks(),
    )
    _problem(response, 413, "payload-too-large")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.jwt",
        "Bearer " + jwt.encode({"sub": "x", "cid": "y", "role": "manager", "exp": 9999999999}, "another-secret-0123456789-0123456789"),
        "Bearer " + jwt.encode({"sub": "x", "cid": "y", "role": "manager", "exp": 9999999999}, DEV_JWT_SECRET),
        "Bearer " + jwt.encode({"sub": "x", "role": "manager", "exp": 9999999999}, DEV_JWT_SECRET),
        "Bearer " + jwt.encode({"sub": "x", "cid": "y", "role": "manager", "exp": 9999999999}, "", algorithm="none"),
    ],
    ids=["none", "empty-bearer", "basic", "garbage", "forged", "bad-claims", "missing-claim", "alg-none"],
)
def test_bad_tokens_are_401(app, header) -> None:
    headers = {"Authorization": header} if header else {}
    _problem(httpx.get(f"{app.url}/api/v1/appointments", headers=headers), 401, "unauthenticated")


def test_expired_token_is_401(app) -> None:
    from stormproof.reference_app.auth import mint_token
    from stormproof.reference_app.settings import Settings

    t = app.tenants[0]
    settings = Settings(database_url="x", redis_url="y")
    token = mint_token(settings, company_id=t.company_id, user_id=t.manager_id, role="manager",
                       ttl_seconds=10, now=time.time() - 100)
    response = httpx.get(f"{app.url}/api/v1/appointments", headers=auth(token))
    _problem(response, 401, "unauthenticated")
    assert "expired" in response.json()["detail"]


def test_rep_cannot_assign_or_create(app) -> None:
    t = app.tenants[0]
    _problem(
        httpx.post(f"{app.url}/api/v1/appointments/{t.appointment_ids[0]}/assign",
                   headers=auth(t.rep_tokens[0], new_key()), json={"rep_id": t.rep_ids[0]}),
        403,
        "forbidden",
    )
    _problem(
        httpx.post(f"{app.url}/api/v1/appointments", headers=auth(t.rep_tokens[0]),
                   json={"title": "x", "starts_at": "2030-01-01T09:00:00Z", "ends_at": "2030-01-01T10:00:00Z"}),
        403,
        "forbidden",
    )


def test_unknown_route_and_method_are_problems(app) -> None:
    _problem(httpx.get(f"{app.url}/api/v1/nope"), 404, "not-found")
    _problem(httpx.put(f"{app.url}/api/v1/recordings/sessions/start"), 405, "method-not-allowed")


def test_metrics_and_health(app) -> None:
    t = app.tenants[0]
    httpx.get(f"{app.url}/api/v1/appointments/{t.appointment_ids[0]}", headers=auth(t.manager_token))
    assert httpx.get(f"{app.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{app.url}/readyz").json()
    assert ready["status"] == "ready"
    text = httpx.get(f"{app.url}/metrics").text
    assert "http_requests_total" in text
    assert 'route="/api/v1/appointments/{appointment_id}"' in text
