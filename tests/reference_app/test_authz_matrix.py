"""Authorization matrix: every endpoint against every kind of caller it must refuse.

The endpoints are enumerated from the app's routers, so a new endpoint is in
the matrix the moment it exists: it fails here until it authenticates, or is
added to the documented exceptions (health, readiness, metrics and the
signed Shunya webhook), and until the matrix knows a valid body and the
other tenant's ids for it.

Callers: no token, an expired token, a forged token (signed with another
secret), a rep on manager-only routes (403), and tenant A's manager on
tenant B's ids (exactly the 404 of a missing id) or on lists (only A's rows).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from stormproof.reference_app.api.deps import get_principal, require_manager
from stormproof.reference_app.api.routes import ROUTERS
from stormproof.reference_app.auth import mint_token
from stormproof.reference_app.settings import DEV_JWT_SECRET, Settings

from .helpers import auth, new_key, sql_rows

#: Routes without a token, on purpose (docs/API.md): probes and scrapes, and Shunya's signed webhook.
UNAUTHENTICATED = {"/healthz", "/readyz", "/metrics", "/api/v1/shunya/webhook"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    id_params: tuple[str, ...]
    manager_only: bool
    has_body: bool

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found = {dependant.call} if dependant.call is not None else set()
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _endpoints() -> list[Endpoint]:
    out = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            deps = _calls(route.dependant)
            if route.path in UNAUTHENTICATED:
                assert get_principal not in deps, f"{route.path} is listed as unauthenticated but needs a token"
                continue
            for method in sorted(route.methods):
                out.append(Endpoint(
                    method, route.path, tuple(p.name for p in route.dependant.path_params),
                    require_manager in deps, route.body_field is not None,
                ))
    return out


ENDPOINTS = _endpoints()


class World:
    """Tenant A (the caller) and the ids of tenant B's rows of every kind a route can name."""

    def __init__(self, app) -> None:
        self.app = app
        self.a, self.b = app.tenants
        b = self.b
        session = httpx.post(f"{app.url}/api/v1/recordings/sessions/start", headers=auth(b.rep_tokens[0], new_key()),
                             json={"appointment_id": b.appointment_ids[2]})
        assert session.status_code == 201, session.text
        call = httpx.post(f"{app.url}/api/v1/calls", headers=auth(b.manager_token),
                          json={"appointment_id": b.appointment_ids[0]})
        assert call.status_code == 202, call.text
        deletion = httpx.post(f"{app.url}/api/v1/deletions", headers=auth(b.manager_token),
                              json={"scope": "appointment", "target_id": b.appointment_ids[1]})
        assert deletion.status_code == 201, deletion.text
        dead_letter = str(uuid.uuid4())
        with psycopg.connect(app.database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            for company, row_id in ((b.company_id, dead_letter), (self.a.company_id, str(uuid.uuid4()))):
                conn.execute("INSERT INTO dead_letters (id, company_id, task_id, task_name, args, error, attempts) "
                             "VALUES (%s, %s, 'tid', 'shunya.submit_job', '{}', 'boom', 3)", (row_id, company))
        self._give_a_rows()
        self.deletion_token = deletion.json()["confirmation_token"]
        #: Path parameter name -> one of B's ids for it. A new parameter must be added here.
        self.b_ids = {
            "appointment_id": b.appointment_ids[0],
            "rep_id": b.rep_ids[0],
            "session_id": session.json()["id"],
            "recording_id": session.json()["id"],
            "call_id": call.json()["id"],
            "dead_letter_id": dead_letter,
            "deletion_id": deletion.json()["id"],
        }

    def _give_a_rows(self) -> None:
        """A row of A's in every list, so that "only A's rows" is tested on something."""
        a, url = self.a, self.app.url
        assert httpx.post(f"{url}/api/v1/recordings/sessions/start", headers=auth(a.rep_tokens[0], new_key()),
                          json={"appointment_id": a.appointment_ids[2]}).status_code == 201
        assert httpx.post(f"{url}/api/v1/calls", headers=auth(a.manager_token),
                          json={"appointment_id": a.appointment_ids[0]}).status_code == 202
        doomed = httpx.post(f"{url}/api/v1/appointments", headers=auth(a.manager_token), json={
            "title": "doomed", "starts_at": _iso(time.time() + 86400 * 60),
            "ends_at": _iso(time.time() + 86400 * 60 + 600)}).json()["id"]
        request = httpx.post(f"{url}/api/v1/deletions", headers=auth(a.manager_token),
                             json={"scope": "appointment", "target_id": doomed}).json()
        assert httpx.post(f"{url}/api/v1/deletions/{request['id']}/confirm", headers=auth(a.manager_token),
                          json={"confirmation_token": request["confirmation_token"]}).status_code == 200

    def body(self, endpoint: Endpoint) -> tuple[Any, bool]:
        """A valid body for the endpoint, and whether it names B's rows (so A must get 404)."""
        now = time.time()
        bodies: dict[str, tuple[Any, bool]] = {
            "POST /api/v1/appointments": ({"title": "matrix", "starts_at": _iso(now + 86400 * 30),
                                           "ends_at": _iso(now + 86400 * 30 + 3600)}, False),
            "PATCH /api/v1/appointments/{appointment_id}": ({"title": "hijacked"}, False),
            "POST /api/v1/appointments/{appointment_id}/assign": ({"rep_id": self.a.rep_ids[0]}, False),
            "POST /api/v1/appointments/{appointment_id}/consents": ({"scope": "recording", "evidence": "x"}, False),
            "POST /api/v1/reps": ({"email": f"{uuid.uuid4().hex}@matrix.test", "name": "M"}, False),
            "POST /api/v1/recordings/sessions/start": ({"appointment_id": self.b.appointment_ids[0]}, True),
            "POST /api/v1/recordings/start": ({"appointment_id": self.b.appointment_ids[0]}, True),
            "POST /api/v1/calls": ({"appointment_id": self.b.appointment_ids[0]}, True),
            "PUT /api/v1/retention-policy": ({"call_days": 90, "appointment_days": 365}, False),
            "POST /api/v1/deletions": ({"scope": "appointment", "target_id": self.b.appointment_ids[0]}, True),
            "POST /api/v1/deletions/{deletion_id}/confirm": ({"confirmation_token": self.deletion_token}, False),
        }
        if not endpoint.has_body:
            return None, False
        assert endpoint.name in bodies, f"the matrix needs a valid body for {endpoint.name}"
        return bodies[endpoint.name]

    def path(self, endpoint: Endpoint, ids: dict[str, str]) -> str:
        path = endpoint.path
        for param in endpoint.id_params:
            assert param in ids, f"the matrix needs tenant B's id for path parameter {param!r} ({endpoint.name})"
            path = path.replace("{" + param + "}", ids[param])
        return path

    def send(self, endpoint: Endpoint, token: str | None, ids: dict[str, str] | None = None) -> httpx.Response:
        body, _ = self.body(endpoint)
        headers = {"Idempotency-Key": new_key()}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(endpoint.method, self.app.url + self.path(endpoint, ids or self.b_ids),
                             headers=headers, json=body)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@pytest.fixture(scope="module")
def world(reference_app_module) -> World:
    return World(reference_app_module(tenants=2, appointments=3, env={"STORMPROOF_RATE_API_PER_SECOND": "0"}))


def _b_state(world: World) -> list[tuple]:
    c = world.b.company_id
    tables = ("appointments", "appointment_assignments", "recording_sessions", "calls", "consents", "users",
              "dead_letters", "deletion_requests", "retention_policies")
    state = []
    for table in tables:
        state.append(tuple(sql_rows(world.app.database_url,
                                    f"SELECT to_jsonb(t)::text FROM {table} t WHERE company_id = %s ORDER BY 1", c)))  # noqa: S608
    return state


def _problem(response: httpx.Response, status: int, what: str) -> None:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", what


def test_the_matrix_covers_every_endpoint() -> None:
    names = {e.name for e in ENDPOINTS}
    assert len(ENDPOINTS) >= 30, names
    assert {"POST /api/v1/deletions", "GET /api/v1/retention-policy",
            "POST /api/v1/appointments/{appointment_id}/consents"} <= names


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_bad_credentials_are_401(world, endpoint) -> None:
    settings = Settings(database_url="postgresql://x@h/d", redis_url="redis://h/0")
    a = world.a
    expired = mint_token(settings, company_id=a.company_id, user_id=a.manager_id, role="manager",
                         ttl_seconds=60, now=time.time() - 3600)
    forged = jwt.encode({"sub": a.manager_id, "cid": a.company_id, "role": "manager", "exp": int(time.time()) + 600},
                        "not-" + DEV_JWT_SECRET, algorithm="HS256")
    for label, token in (("no token", None), ("expired", expired), ("forged", forged), ("garbage", "x.y.z")):
        _problem(world.send(endpoint, token), 401, f"{endpoint.name} with {label}")


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.manager_only], ids=lambda e: e.name)
def test_reps_are_403_on_manager_routes(world, endpoint) -> None:
    before = _b_state(world)
    a = world.a
    own_ids = {**world.b_ids, "appointment_id": a.appointment_ids[1], "rep_id": a.rep_ids[0]}
    _problem(world.send(endpoint, a.rep_tokens[0], own_ids), 403, endpoint.name)
    assert _b_state(world) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_another_tenants_ids_are_404_and_lists_hold_only_own_rows(world, endpoint) -> None:
    before = _b_state(world)
    token = world.a.manager_token
    _, names_b = world.body(endpoint)
    response = world.send(endpoint, token)
    if endpoint.id_params or names_b:
        missing_ids = {name: str(uuid.uuid4()) for name in world.b_ids}
        missing = world.send(endpoint, token, missing_ids) if endpoint.id_params else None
        _problem(response, 404, endpoint.name)
        if missing is not None:
            _problem(missing, 404, f"{endpoint.name} (missing id)")
            assert response.json() == missing.json(), f"{endpoint.name}: B's id is distinguishable from a missing one"
    else:
        assert response.status_code < 400, f"{endpoint.name}: {response.status_code} {response.text}"
        data = response.json()
        rows = data if isinstance(data, list) else [data]
        if endpoint.method == "GET" and isinstance(data, list):
            assert rows, f"{endpoint.name}: an empty list proves nothing; give tenant A a row"
        for row in rows:
            if isinstance(row, dict) and "company_id" in row:
                assert row["company_id"] == world.a.company_id, f"{endpoint.name} answered B's data: {row}"
    assert _b_state(world) == before, f"{endpoint.name} changed tenant B's rows"


def test_the_matrix_sees_leaks_when_the_tenant_guard_is_off(reference_app) -> None:
    """Weakened, B's ids are served to A: the same probes must notice, or the matrix proves nothing."""
    weak = World(reference_app(("tenant-guard",), tenants=2, appointments=3,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0"}))
    reads = [e for e in ENDPOINTS if e.method == "GET" and e.id_params]
    leaked = [e.name for e in reads if weak.send(e, weak.a.manager_token).status_code == 200]
    print(f"\n[tenant-guard weakened] {len(leaked)}/{len(reads)} id reads leaked: {leaked}")
    assert "GET /api/v1/appointments/{appointment_id}" in leaked
    assert "GET /api/v1/appointments/{appointment_id}/consents" in leaked
