"""Plan A2/A3 under real concurrency: 50 simultaneous requests against a uvicorn process.

Every configuration widens the race with STORMPROOF_RACE_DELAY_MS, so a single
remaining guard is really tested, and the all-guards-off case proves these
tests can fail. That proof holds the window open until two requests are
inside it (``STORMPROOF_RACE_BARRIER``, at most 10 s), so with no guard both
pass the check before either writes: the duplicate is certain, not likely.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from .helpers import auth, fire_together, new_key, sql_rows

RACE = {"STORMPROOF_RACE_DELAY_MS": "500"}
#: For the tests that prove a race: the window closes once two callers are in it (at most 10 s).
SURE_RACE = {"STORMPROOF_RACE_DELAY_MS": "10000", "STORMPROOF_RACE_BARRIER": "2"}
N = 50


def _start_storm(app) -> tuple[list, int]:
    tenant = app.tenants[0]
    appointment = tenant.appointment_ids[0]
    requests = [
        ("POST", "/api/v1/recordings/sessions/start",
         auth(tenant.rep_tokens[i % len(tenant.rep_tokens)], new_key()), {"appointment_id": appointment})
        for i in range(N)
    ]
    responses = asyncio.run(fire_together(app.url, requests))
    (active,) = sql_rows(
        app.database_url,
        "SELECT count(*) FROM recording_sessions WHERE appointment_id = %s "
        "AND status IN ('pending', 'recording')",
        appointment,
    )[0:1]
    return responses, active[0]


@pytest.mark.parametrize(
    "weakenings",
    [(), ("session-lock",), ("session-unique-index",)],
    ids=["all-guards", "index-only", "lock-only"],
)
def test_concurrent_session_starts_leave_one_active(reference_app, weakenings) -> None:
    app = reference_app(weakenings, env=RACE)
    responses, active = _start_storm(app)
    statuses = sorted(r.status_code for r in responses)
    print(f"\n[session-start {weakenings or 'none'}] 201s={statuses.count(201)} active={active}")
    assert active == 1
    assert statuses.count(201) == 1
    assert all(s in (201, 409) for s in statuses), statuses
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    # A 409 either names the active session (the check saw it) or says resource-busy (the lock
    # holder outlasted the wait, which a loaded machine makes likely): both refuse by design.
    refusals = [r.json() for r in responses if r.status_code == 409]
    kinds = {body.get("type", "").rsplit("/", 1)[-1] for body in refusals}
    assert kinds <= {"active-session-exists", "resource-busy"}, kinds
    conflicts = {body["active_session_id"] for body in refusals if body["type"].endswith("/active-session-exists")}
    assert conflicts <= ids


def test_concurrent_session_starts_duplicate_without_guards(reference_app) -> None:
    app = reference_app(("session-lock", "session-unique-index"), env=SURE_RACE)
    responses, active = _start_storm(app)
    created = sum(r.status_code == 201 for r in responses)
    print(f"\n[session-start unguarded] 201s={created} active={active}")
    assert active > 1, "with every guard off the race must show duplicates"
    assert created == active


def test_a_start_the_index_refused_names_the_blocker_or_starts(reference_app) -> None:
    """The index refuses a start, and its blocker is stopped before the refusal is answered.

    Two starts pass the check together (no lock, a 3 s window), the first
    insert wins, and the second is refused by the unique index; it then waits
    3 s more (the same window, between the refusal and reading the blocker)
    while the test stops the winner. With the winner gone the second start is no
    longer in conflict: it starts (redis-flap found the old code answering a 409
    that named no session, breaking single-active-session's naming rule).
    """
    app = reference_app(("session-lock",), env={"STORMPROOF_RACE_DELAY_MS": "3000"})
    tenant = app.tenants[0]
    appointment = tenant.appointment_ids[1]

    async def race() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        limits = httpx.Limits(max_connections=10, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=app.url, timeout=60, limits=limits) as client:
            starts = [asyncio.create_task(client.post(
                "/api/v1/recordings/sessions/start", headers=auth(token, new_key()),
                json={"appointment_id": appointment})) for token in tenant.rep_tokens[:2]]
            done, pending = await asyncio.wait(starts, return_when=asyncio.FIRST_COMPLETED)
            (first,) = [task.result() for task in done]
            assert first.status_code == 201, first.text
            stop = await client.post(f"/api/v1/recordings/sessions/{first.json()['id']}/stop",
                                     headers=auth(tenant.rep_tokens[0], new_key()))
            (second,) = await asyncio.gather(*pending)
            return first, stop, second

    first, stop, second = asyncio.run(race())
    assert stop.status_code == 200, stop.text
    assert second.status_code == 201, (second.status_code, second.text)
    active = sql_rows(app.database_url, "SELECT id FROM recording_sessions WHERE appointment_id = %s "
                      "AND status IN ('pending', 'recording')", appointment)
    assert [str(row[0]) for row in active] == [second.json()["id"]]


def _assign_storm(app) -> tuple[list, list]:
    tenant = app.tenants[0]
    appointment = tenant.appointment_ids[0]
    requests = [
        ("POST", f"/api/v1/appointments/{appointment}/assign",
         auth(tenant.manager_token, new_key()), {"rep_id": tenant.rep_ids[i]})
        for i in range(N)
    ]
    responses = asyncio.run(fire_together(app.url, requests))
    active = sql_rows(
        app.database_url,
        "SELECT rep_id FROM appointment_assignments WHERE appointment_id = %s AND status = 'active'",
        appointment,
    )
    return responses, active


@pytest.mark.parametrize(
    "weakenings",
    [(), ("assignment-lock",), ("assignment-guard",)],
    ids=["all-guards", "db-guard-only", "lock-only"],
)
def test_concurrent_assignments_give_one_assignee(reference_app, weakenings) -> None:
    app = reference_app(weakenings, env=RACE, reps=N, appointments=1)
    responses, active = _assign_storm(app)
    ok = [r for r in responses if r.status_code == 200]
    print(f"\n[assign {weakenings or 'none'}] 200s={len(ok)} active={len(active)}")
    assert len(active) == 1
    assert len(ok) == 1
    assert all(r.status_code in (200, 409) for r in responses)
    assert ok[0].json()["rep_id"] == str(active[0][0])


def test_concurrent_assignments_duplicate_without_guards(reference_app) -> None:
    app = reference_app(("assignment-lock", "assignment-guard"), env=SURE_RACE, reps=N, appointments=1)
    responses, active = _assign_storm(app)
    ok = sum(r.status_code == 200 for r in responses)
    print(f"\n[assign unguarded] 200s={ok} active={len(active)}")
    assert len(active) > 1, "with every guard off the race must show several assignees"
    assert ok == len(active)


def test_rep_is_not_double_booked_across_overlapping_appointments(reference_app) -> None:
    """Two overlapping appointments, one rep, assigned at once: the exclusion constraint decides."""
    app = reference_app(("assignment-lock",), env=RACE, reps=1, appointments=1)
    tenant = app.tenants[0]
    import httpx

    first = httpx.get(f"{app.url}/api/v1/appointments/{tenant.appointment_ids[0]}",
                      headers=auth(tenant.manager_token)).json()
    created = httpx.post(
        f"{app.url}/api/v1/appointments",
        headers=auth(tenant.manager_token),
        json={"title": "overlap", "starts_at": first["starts_at"], "ends_at": first["ends_at"]},
    )
    assert created.status_code == 201
    ids = [tenant.appointment_ids[0], created.json()["id"]]
    requests = [
        ("POST", f"/api/v1/appointments/{ids[i % 2]}/assign", auth(tenant.manager_token, new_key()),
         {"rep_id": tenant.rep_ids[0]})
        for i in range(20)
    ]
    responses = asyncio.run(fire_together(app.url, requests))
    active = sql_rows(
        app.database_url,
        "SELECT appointment_id FROM appointment_assignments WHERE rep_id = %s AND status = 'active'",
        tenant.rep_ids[0],
    )
    assert len(active) == 1
    kinds = {r.json().get("type", "").rsplit("/", 1)[-1] for r in responses if r.status_code == 409}
    assert "rep-double-booked" in kinds
    # Every loser is refused 409, none meets the winner in the exclusion constraint (a deadlock there was a 500).
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses if r.status_code >= 500]
