"""Tenant isolation (plan D1/D2): reads, updates, deletes and id probes across tenants.

Each probe is tenant A's manager acting on tenant B's ids. Hardened, every probe
answers exactly the 404 a never-existing id gets, and B's rows are untouched.
With ``tenant-guard`` weakened the same suite must show leaks, which proves it can fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from .helpers import auth, new_key, sql_rows


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: Callable[[object], str]
    body: Callable[[object, object], object | None] = lambda a, b: None


def _session_of(app, tenant) -> str:
    """A recording session owned by ``tenant``, created by ``tenant`` itself."""
    response = httpx.post(
        f"{app.url}/api/v1/recordings/sessions/start",
        headers=auth(tenant.rep_tokens[0], new_key()),
        json={"appointment_id": tenant.appointment_ids[2]},
    )
    assert response.status_code in (201, 409)
    return response.json()["id"] if response.status_code == 201 else response.json()["active_session_id"]


PROBES = [
    Probe("read appointment", "GET", lambda b: f"/api/v1/appointments/{b.appointment_ids[0]}"),
    Probe("read assignments", "GET", lambda b: f"/api/v1/appointments/{b.appointment_ids[0]}/assignments"),
    Probe("read rep", "GET", lambda b: f"/api/v1/reps/{b.rep_ids[0]}"),
    Probe("read session", "GET", lambda b: f"/api/v1/recordings/sessions/{b.session_id}"),
    Probe("update appointment", "PATCH", lambda b: f"/api/v1/appointments/{b.appointment_ids[0]}",
          lambda a, b: {"title": "hijacked"}),
    Probe("assign their appointment", "POST", lambda b: f"/api/v1/appointments/{b.appointment_ids[1]}/assign",
          lambda a, b: {"rep_id": a.rep_ids[0]}),
    Probe("assign their rep", "POST", lambda b: f"/api/v1/appointments/{b.own_appointment}/assign",
          lambda a, b: {"rep_id": b.rep_ids[0]}),
    Probe("unassign their appointment", "POST", lambda b: f"/api/v1/appointments/{b.appointment_ids[1]}/unassign"),
    Probe("start on their appointment", "POST", lambda b: "/api/v1/recordings/sessions/start",
          lambda a, b: {"appointment_id": b.appointment_ids[0]}),
    Probe("stop their session", "POST", lambda b: f"/api/v1/recordings/sessions/{b.session_id}/stop"),
    Probe("legacy stop their session", "POST", lambda b: f"/api/v1/recordings/{b.session_id}/stop"),
    Probe("delete appointment", "DELETE", lambda b: f"/api/v1/appointments/{b.appointment_ids[2]}"),
]


class Target:
    """Tenant B's ids, plus the ids a probe needs from A."""

    def __init__(self, b, session_id: str, own_appointment: str) -> None:
        self.appointment_ids = b.appointment_ids
        self.rep_ids = b.rep_ids
        self.session_id = session_id
        self.own_appointment = own_appointment


def _snapshot(app, company_id: str) -> list[tuple]:
    queries = [
        "SELECT id::text, title, assigned_rep_id::text FROM appointments WHERE company_id = %s ORDER BY id",
        "SELECT id::text, status FROM recording_sessions WHERE company_id = %s ORDER BY id",
        "SELECT id::text, status FROM appointment_assignments WHERE company_id = %s ORDER BY id",
    ]
    return [tuple(sql_rows(app.database_url, q, company_id)) for q in queries]


def _run_probes(app) -> dict[str, httpx.Response]:
    a, b = app.tenants
    target = Target(b, _session_of(app, b), a.appointment_ids[0])
    results = {}
    for probe in PROBES:
        results[probe.name] = httpx.request(
            probe.method,
            app.url + probe.path(target),
            headers=auth(a.manager_token, new_key()),
            json=probe.body(a, target),
        )
    return results


@pytest.fixture(scope="module")
def hardened(reference_app_module):
    return reference_app_module()


def test_every_cross_tenant_probe_is_an_indistinguishable_404(hardened) -> None:
    b = hardened.tenants[1]
    missing = httpx.get(f"{hardened.url}/api/v1/appointments/{uuid.uuid4()}", headers=auth(hardened.tenants[0].manager_token))
    assert missing.status_code == 404
    _session_of(hardened, b)
    before = _snapshot(hardened, b.company_id)
    results = _run_probes(hardened)
    for name, response in results.items():
        assert response.status_code == 404, f"{name}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.json()) == set(missing.json()), name
        assert response.json()["title"] == missing.json()["title"]
    assert _snapshot(hardened, b.company_id) == before, "tenant B's rows changed"


def test_lists_carry_only_the_callers_rows(hardened) -> None:
    a, b = hardened.tenants
    _session_of(hardened, a)
    _session_of(hardened, b)
    for path in ("/api/v1/appointments", "/api/v1/reps", "/api/v1/recordings/sessions"):
        rows = httpx.get(hardened.url + path, headers=auth(a.manager_token)).json()
        assert rows, path
        assert {row["company_id"] for row in rows} == {a.company_id}, path
    filtered = httpx.get(
        hardened.url + "/api/v1/appointments", params={"assigned_rep_id": b.rep_ids[0]}, headers=auth(a.manager_token)
    )
    assert filtered.json() == []


def test_tenant_comes_from_the_token_not_a_header(hardened) -> None:
    a, b = hardened.tenants
    response = httpx.get(
        hardened.url + "/api/v1/appointments", headers=auth(a.manager_token, **{"X-Company-Id": b.company_id})
    )
    assert {row["company_id"] for row in response.json()} == {a.company_id}


def test_weakened_tenant_guard_leaks_and_the_suite_sees_it(reference_app) -> None:
    app = reference_app(("tenant-guard",))
    b = app.tenants[1]
    _session_of(app, b)
    before = _snapshot(app, b.company_id)
    results = _run_probes(app)
    leaked = sorted(name for name, r in results.items() if r.status_code != 404)
    print(f"\n[tenant-guard weakened] {len(leaked)}/{len(results)} probes leaked: {leaked}")
    assert "read appointment" in leaked
    assert results["read appointment"].json()["company_id"] == b.company_id
    assert "delete appointment" in leaked
    assert _snapshot(app, b.company_id) != before, "weakened, A's requests must reach B's rows"


def test_weakened_header_tenancy_leaks(reference_app) -> None:
    app = reference_app(("tenant-from-header",))
    a, b = app.tenants
    response = httpx.get(app.url + "/api/v1/appointments", headers=auth(a.manager_token, **{"X-Company-Id": b.company_id}))
    assert {row["company_id"] for row in response.json()} == {b.company_id}
