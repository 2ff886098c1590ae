"""The seed data that puts promises at risk (``seed(at_risk=True)``, what runs get) really does.

Each seeded situation is one request away from breaking a promise: the app
with every fix on must refuse that request with the contract's answer.
"""

from __future__ import annotations

import httpx

from .helpers import auth, new_key


def test_seeded_conflicts_are_refused(reference_app) -> None:
    app = reference_app(tenants=2, seed_at_risk=True)
    first, last = app.tenants
    url, token = app.url, first.manager_token
    # overlapping windows, the first held by rep 1: assigning the second to rep 1 double-books them (A3)
    a, b = first.overlap_appointment_ids
    held = httpx.get(f"{url}/api/v1/appointments/{a}", headers=auth(token)).json()
    assert held["assigned_rep_id"] == first.rep_ids[0]
    double = httpx.post(f"{url}/api/v1/appointments/{b}/assign", json={"rep_id": first.rep_ids[0]},
                        headers=auth(token, new_key()))
    assert double.status_code == 409 and double.json()["type"].endswith("/rep-double-booked")
    # a session already recording: another start is refused (A2)
    (active,) = first.active_session_appointment_ids
    start = httpx.post(f"{url}/api/v1/recordings/sessions/start", json={"appointment_id": active},
                       headers=auth(token, new_key()))
    assert start.status_code == 409 and start.json()["type"].endswith("/active-session-exists")
    # no consent: recording is refused (F3); the last tenant has none on its overlapping appointments either
    for tenant, appointment in ((first, first.unconsented_appointment_ids[0]), (last, last.overlap_appointment_ids[1])):
        refused = httpx.post(f"{url}/api/v1/recordings/sessions/start", json={"appointment_id": appointment},
                             headers=auth(tenant.manager_token, new_key()))
        assert refused.status_code == 409 and refused.json()["type"].endswith("/consent-required")
    # a deleted appointment's id answers like any missing id (D2)
    (gone,) = first.deleted_appointment_ids
    assert httpx.get(f"{url}/api/v1/appointments/{gone}", headers=auth(token)).status_code == 404
    # the expired token is refused (401), the live one is not
    assert httpx.get(f"{url}/api/v1/me", headers=auth(first.expired_token)).status_code == 401
    assert httpx.get(f"{url}/api/v1/me", headers=auth(token)).status_code == 200
    # dead letters in every tenant (no route creates one): listed for its own tenant only, 404 to another,
    # retried once by its own manager, and a second retry is refused (C2, D2)
    letter = first.dead_letter_ids[0]
    listed = httpx.get(f"{url}/api/v1/dead-letters?status=dead", headers=auth(token)).json()
    assert sorted(row["id"] for row in listed) == sorted(first.dead_letter_ids)
    # and one retried before the run, left out of the dead ones (C2: the list's status filter is at risk)
    every = httpx.get(f"{url}/api/v1/dead-letters", headers=auth(token)).json()
    assert [row["status"] for row in every if row["id"] not in first.dead_letter_ids] == ["retried"]
    assert httpx.post(f"{url}/api/v1/dead-letters/{letter}/retry",
                      headers=auth(last.manager_token)).status_code == 404
    assert httpx.post(f"{url}/api/v1/dead-letters/{letter}/retry", headers=auth(token)).status_code == 200
    assert httpx.post(f"{url}/api/v1/dead-letters/{letter}/retry", headers=auth(token)).status_code == 409


def test_the_seeded_policy_is_in_force_only_once_the_load_sets_it(reference_app) -> None:
    """The seed stores a looser policy than the one the load's PUT sends, so a PUT that stores nothing shows
    (the final row keeps the seed's days) and a run before any PUT deletes less, never more."""
    app = reference_app(tenants=2, seed_at_risk=True)
    short, other = app.tenants
    url = f"{app.url}/api/v1/retention-policy"
    wanted = short.retention_policy
    assert wanted and other.retention_policy is None
    before = httpx.get(url, headers=auth(short.manager_token)).json()
    assert (before["call_days"], before["appointment_days"]) != (wanted["call_days"], wanted["appointment_days"])
    assert before["call_days"] >= wanted["call_days"] and before["appointment_days"] >= wanted["appointment_days"]
    assert httpx.put(url, json=wanted, headers=auth(short.manager_token)).status_code == 200
    after = httpx.get(url, headers=auth(short.manager_token)).json()
    assert {k: after[k] for k in wanted} == wanted
    assert httpx.get(url, headers=auth(other.manager_token)).json()["default"] is True
