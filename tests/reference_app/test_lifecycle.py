"""Data lifecycle (plan F1 to F3): consent before processing, retention, confirmed deletion with audit.

The module's app is seeded *without* consents, so every consent here is one a
test recorded; each tenant-isolation test shows tenant A's ids of tenant B
answer the 404 of a missing id and leave B's rows as they were.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest

from stormproof.reference_app.settings import Settings
from stormproof.reference_app.worker.celery_app import RETENTION_TASK, make_celery

from .background import wait_for
from .helpers import auth, new_key, sql_rows


@pytest.fixture(scope="module")
def app(reference_app_module):
    return reference_app_module(
        tenants=2, appointments=4, seed_consent=False, task_workers=1,
        env={"STORMPROOF_RETENTION_BATCH_SIZE": "2", "STORMPROOF_RATE_API_PER_SECOND": "0"},
        shunya={"webhook_enabled": False},
    )


def _problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["type"].endswith("/" + slug), doc
    return doc


def _execute(app, query: str, *params: object) -> None:
    with psycopg.connect(app.database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(query, params)  # type: ignore[arg-type]


def _count(app, table: str, company_id: str) -> int:
    return sql_rows(app.database_url, f"SELECT count(*) FROM {table} WHERE company_id = %s", company_id)[0][0]  # noqa: S608


def _consent(app, token: str, appointment_id: str, scope: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{app.url}/api/v1/appointments/{appointment_id}/consents",
        headers=auth(token, **headers), json={"scope": scope, "evidence": f"signed form v3 ({scope})"},
    )


def _start(app, token: str, appointment_id: str, legacy: bool = False) -> httpx.Response:
    path = "/api/v1/recordings/start" if legacy else "/api/v1/recordings/sessions/start"
    return httpx.post(f"{app.url}{path}", headers=auth(token, new_key()), json={"appointment_id": appointment_id})


def _submit(app, token: str, appointment_id: str | None) -> httpx.Response:
    body = {"appointment_id": appointment_id} if appointment_id else {}
    return httpx.post(f"{app.url}/api/v1/calls", headers=auth(token), json=body)


def _new_appointment(app, tenant, *, days_ago: float = -1.0) -> str:
    """An appointment of ``tenant`` ending ``days_ago`` days ago (negative: in the future), inserted directly."""
    appointment_id = str(uuid.uuid4())
    ends = datetime.now(timezone.utc) - timedelta(days=days_ago)
    _execute(app, "INSERT INTO appointments (id, company_id, title, starts_at, ends_at, status) "
                  "VALUES (%s, %s, 'x', %s, %s, 'scheduled')",
             appointment_id, tenant.company_id, ends - timedelta(hours=1), ends)
    return appointment_id


def _with_everything(app, tenant, appointment_id: str, *, call_days_ago: float = 0.0) -> dict[str, str]:
    """Give an appointment a consent, an assignment, a session and a call with its job and analysis."""
    ids = {name: str(uuid.uuid4()) for name in ("consent", "assignment", "session", "call", "job", "analysis")}
    created = datetime.now(timezone.utc) - timedelta(days=call_days_ago)
    c = tenant.company_id
    _execute(app, "INSERT INTO consents (id, company_id, appointment_id, scope, granted_at, evidence) "
                  "VALUES (%s, %s, %s, 'recording', now(), 'e')", ids["consent"], c, appointment_id)
    _execute(app, "INSERT INTO appointment_assignments (id, company_id, appointment_id, rep_id, starts_at, ends_at, "
                  "status) SELECT %s, company_id, id, %s, starts_at, ends_at, 'released' FROM appointments "
                  "WHERE id = %s", ids["assignment"], tenant.rep_ids[0], appointment_id)
    _execute(app, "INSERT INTO recording_sessions (id, company_id, appointment_id, started_by, status, source) "
                  "VALUES (%s, %s, %s, %s, 'stopped', 'sessions')", ids["session"], c, appointment_id,
             tenant.rep_ids[0])
    _call(app, tenant, ids, created, appointment_id=appointment_id, session_id=ids["session"])
    return ids


def _call(app, tenant, ids: dict[str, str], created: datetime, *, appointment_id: str | None = None,
          session_id: str | None = None) -> None:
    c = tenant.company_id
    _execute(app, "INSERT INTO calls (id, company_id, appointment_id, recording_session_id, status, created_at) "
                  "VALUES (%s, %s, %s, %s, 'completed', %s)", ids["call"], c, appointment_id, session_id, created)
    _execute(app, "INSERT INTO shunya_jobs (id, company_id, call_id, shunya_job_id, status, attempts, created_at) "
                  "VALUES (%s, %s, %s, %s, 'completed', 1, %s)", ids["job"], c, ids["call"], "shj_" + ids["job"],
             created)
    _execute(app, "INSERT INTO call_analyses (id, company_id, call_id, shunya_job_id, output_hash, result, "
                  "applied_by) VALUES (%s, %s, %s, %s, 'h', '{}', 'webhook')", ids["analysis"], c, ids["call"],
             "shj_" + ids["job"])


def _exists(app, table: str, row_id: str) -> bool:
    return bool(sql_rows(app.database_url, f"SELECT 1 FROM {table} WHERE id = %s", row_id))  # noqa: S608


# -- consent (F3) ----------------------------------------------------------------------------------


def test_recording_and_analysis_need_their_own_consent(app) -> None:
    t = app.tenants[0]
    appointment = t.appointment_ids[0]
    for response in (_start(app, t.rep_tokens[0], appointment), _start(app, t.rep_tokens[0], appointment, True)):
        doc = _problem(response, 409, "consent-required")
        assert doc["scope"] == "recording" and doc["appointment_id"] == appointment
    assert _problem(_submit(app, t.manager_token, appointment), 409, "consent-required")["scope"] == "analysis"
    assert sql_rows(app.database_url, "SELECT count(*) FROM recording_sessions WHERE appointment_id = %s",
                    appointment)[0][0] == 0
    assert sql_rows(app.database_url, "SELECT count(*) FROM calls WHERE appointment_id = %s", appointment)[0][0] == 0

    granted = _consent(app, t.rep_tokens[0], appointment, "recording", **{"User-Agent": "consent-kiosk/1.0"})
    assert granted.status_code == 201, granted.text
    consent = granted.json()
    assert consent["scope"] == "recording" and consent["company_id"] == t.company_id
    assert consent["ip"] == "127.0.0.1" and consent["user_agent"] == "consent-kiosk/1.0"
    assert _start(app, t.rep_tokens[0], appointment).status_code == 201
    # A recording consent is not an analysis consent.
    _problem(_submit(app, t.manager_token, appointment), 409, "consent-required")
    assert _consent(app, t.manager_token, appointment, "analysis").status_code == 201
    assert _submit(app, t.manager_token, appointment).status_code == 202
    listed = httpx.get(f"{app.url}/api/v1/appointments/{appointment}/consents", headers=auth(t.rep_tokens[1]))
    assert [c["scope"] for c in listed.json()] == ["recording", "analysis"]


def test_a_call_without_an_appointment_needs_no_consent(app) -> None:
    assert _submit(app, app.tenants[0].manager_token, None).status_code == 202


def test_consent_body_is_validated(app) -> None:
    t = app.tenants[0]
    for body in ({"scope": "marketing", "evidence": "x"}, {"scope": "recording"},
                 {"scope": "recording", "evidence": ""}, {"scope": "recording", "evidence": "x", "ip": "1.2.3.4"}):
        response = httpx.post(f"{app.url}/api/v1/appointments/{t.appointment_ids[1]}/consents",
                              headers=auth(t.manager_token), json=body)
        _problem(response, 422, "validation-error")


def test_consents_of_another_tenant_are_404_and_untouched(app) -> None:
    a, b = app.tenants
    target = b.appointment_ids[3]
    missing = _consent(app, a.manager_token, str(uuid.uuid4()), "recording")
    _problem(missing, 404, "not-found")
    probe = _consent(app, a.manager_token, target, "recording")
    assert probe.status_code == 404 and probe.json() == missing.json()
    listed = httpx.get(f"{app.url}/api/v1/appointments/{target}/consents", headers=auth(a.manager_token))
    assert listed.status_code == 404
    assert sql_rows(app.database_url, "SELECT count(*) FROM consents WHERE appointment_id = %s", target)[0][0] == 0
    # And B still cannot record on its own appointment: A's probe granted nothing.
    _problem(_start(app, b.rep_tokens[0], target), 409, "consent-required")


def test_weakened_consent_check_records_without_consent(reference_app) -> None:
    weak = reference_app(("consent-check",), tenants=1, appointments=1, seed_consent=False)
    t = weak.tenants[0]
    assert _start(weak, t.rep_tokens[0], t.appointment_ids[0]).status_code == 201
    assert sql_rows(weak.database_url, "SELECT count(*) FROM consents")[0][0] == 0


def test_seeding_records_both_consents_for_every_appointment(reference_app) -> None:
    seeded = reference_app(tenants=1, appointments=2)
    rows = sql_rows(seeded.database_url, "SELECT appointment_id::text, scope FROM consents ORDER BY 1, 2")
    assert rows == sorted((a, s) for a in seeded.tenants[0].appointment_ids for s in ("analysis", "recording"))


# -- retention (F1) --------------------------------------------------------------------------------


def test_retention_policy_defaults_then_per_company(app) -> None:
    a, b = app.tenants
    url = f"{app.url}/api/v1/retention-policy"
    assert httpx.get(url, headers=auth(b.manager_token)).json() == {
        "company_id": b.company_id, "call_days": 90, "appointment_days": 365, "default": True}
    _problem(httpx.get(url, headers=auth(a.rep_tokens[0])), 403, "forbidden")
    _problem(httpx.put(url, headers=auth(a.rep_tokens[0]), json={"call_days": 1, "appointment_days": 1}),
             403, "forbidden")
    _problem(httpx.put(url, headers=auth(a.manager_token), json={"call_days": 0, "appointment_days": 1}),
             422, "validation-error")
    put = httpx.put(url, headers=auth(a.manager_token), json={"call_days": 30, "appointment_days": 400})
    assert put.status_code == 200 and put.json()["default"] is False
    assert httpx.get(url, headers=auth(a.manager_token)).json()["call_days"] == 30
    assert httpx.get(url, headers=auth(b.manager_token)).json()["default"] is True, "A's policy leaked to B"


def test_retention_run_deletes_expired_data_in_batches_for_the_callers_company_only(app) -> None:
    a, b = app.tenants
    httpx.put(f"{app.url}/api/v1/retention-policy", headers=auth(a.manager_token),
              json={"call_days": 30, "appointment_days": 400}).raise_for_status()
    old_calls = []
    for _ in range(5):  # batch size 2: three batches of calls
        ids = {n: str(uuid.uuid4()) for n in ("call", "job", "analysis")}
        _call(app, a, ids, datetime.now(timezone.utc) - timedelta(days=31))
        old_calls.append(ids)
    fresh = {n: str(uuid.uuid4()) for n in ("call", "job", "analysis")}
    _call(app, a, fresh, datetime.now(timezone.utc) - timedelta(days=29))
    expired_appointment = _new_appointment(app, a, days_ago=401)
    expired = _with_everything(app, a, expired_appointment, call_days_ago=1)  # its call is still in retention
    kept_appointment = _new_appointment(app, a, days_ago=399)
    # B's data is as old, but B's policy is the default (90 days of calls, 365 of appointments).
    b_ids = {n: str(uuid.uuid4()) for n in ("call", "job", "analysis")}
    _call(app, b, b_ids, datetime.now(timezone.utc) - timedelta(days=31))
    b_appointment = _new_appointment(app, b, days_ago=364)
    audit_id = str(uuid.uuid4())
    _execute(app, "INSERT INTO deletion_audit (id, company_id, requested_by, confirmed_by, scope, target_id, counts, "
                  "requested_at, executed_at) VALUES (%s, %s, %s, %s, 'appointment', %s, '{}', %s, %s)",
             audit_id, a.company_id, a.manager_id, a.manager_id, str(uuid.uuid4()),
             datetime(2001, 1, 1, tzinfo=timezone.utc), datetime(2001, 1, 1, tzinfo=timezone.utc))

    _problem(httpx.post(f"{app.url}/api/v1/admin/retention/run", headers=auth(a.rep_tokens[0])), 403, "forbidden")
    run = httpx.post(f"{app.url}/api/v1/admin/retention/run", headers=auth(a.manager_token))
    assert run.status_code == 200, run.text
    counts = run.json()["counts"]
    assert run.json()["company_id"] == a.company_id
    assert (counts["calls"], counts["shunya_jobs"], counts["call_analyses"]) == (5, 5, 5)
    assert (counts["appointments"], counts["recording_sessions"], counts["appointment_assignments"],
            counts["consents"]) == (1, 1, 1, 1)
    assert counts["batches"] == 4, counts  # 2 + 2 + 1 calls, then 1 appointment
    for ids in old_calls:
        assert not any(_exists(app, t, ids[k]) for t, k in
                       (("calls", "call"), ("shunya_jobs", "job"), ("call_analyses", "analysis")))
    assert _exists(app, "calls", fresh["call"]) and _exists(app, "call_analyses", fresh["analysis"])
    assert not _exists(app, "appointments", expired_appointment)
    assert not _exists(app, "recording_sessions", expired["session"])
    assert _exists(app, "calls", expired["call"]), "a call inside its own retention outlives its appointment"
    assert sql_rows(app.database_url, "SELECT appointment_id, recording_session_id FROM calls WHERE id = %s",
                    expired["call"]) == [(None, None)]
    assert _exists(app, "appointments", kept_appointment)
    assert _exists(app, "calls", b_ids["call"]) and _exists(app, "appointments", b_appointment), "B's rows deleted"
    assert _exists(app, "deletion_audit", audit_id), "audit rows are never subject to retention"
    again = httpx.post(f"{app.url}/api/v1/admin/retention/run", headers=auth(a.manager_token)).json()["counts"]
    assert set(again.values()) == {0}


def test_the_celery_task_enforces_retention(app) -> None:
    b = app.tenants[1]
    ids = {n: str(uuid.uuid4()) for n in ("call", "job", "analysis")}
    _call(app, b, ids, datetime.now(timezone.utc) - timedelta(days=91))
    celery = make_celery(Settings(database_url=app.database_url, redis_url=app.redis_url))
    celery.send_task(RETENTION_TASK, kwargs={"company_id": b.company_id})
    wait_for(lambda: not _exists(app, "calls", ids["call"]), timeout=30, what="the task to delete the call")
    assert not _exists(app, "call_analyses", ids["analysis"])
    wait_for(lambda: sql_rows(app.database_url, "SELECT state FROM task_records WHERE name = %s", RETENTION_TASK)
             == [("succeeded",)], timeout=30, what="the task's ledger row to succeed")


def test_the_beat_schedule_runs_retention() -> None:
    celery = make_celery(Settings(database_url="postgresql://x@h/d", redis_url="redis://h/0",
                                  retention_interval_seconds=600))
    (entry,) = celery.conf.beat_schedule.values()
    assert entry["task"] == RETENTION_TASK and entry["schedule"] == 600.0


# -- deletion (F2) ---------------------------------------------------------------------------------


def _request_deletion(app, token: str, scope: str, target: str) -> httpx.Response:
    return httpx.post(f"{app.url}/api/v1/deletions", headers=auth(token), json={"scope": scope, "target_id": target})


def _confirm(app, token: str, deletion_id: str, confirmation: str) -> httpx.Response:
    return httpx.post(f"{app.url}/api/v1/deletions/{deletion_id}/confirm", headers=auth(token),
                      json={"confirmation_token": confirmation})


def test_appointment_deletion_needs_confirmation_cascades_and_is_audited(app) -> None:
    a = app.tenants[0]
    appointment = _new_appointment(app, a)
    ids = _with_everything(app, a, appointment)
    other = _new_appointment(app, a)
    _with_everything(app, a, other)
    _problem(_request_deletion(app, a.rep_tokens[0], "appointment", appointment), 403, "forbidden")
    created = _request_deletion(app, a.manager_token, "appointment", appointment)
    assert created.status_code == 201, created.text
    request = created.json()
    expected = {"call_analyses": 1, "shunya_jobs": 1, "calls": 1, "recording_sessions": 1,
                "appointment_assignments": 1, "consents": 1, "appointments": 1}
    assert request["counts"] == expected and request["status"] == "pending"
    assert _exists(app, "appointments", appointment), "a request alone deletes nothing"
    assert sql_rows(app.database_url, "SELECT token_hash <> %s FROM deletion_requests WHERE id = %s",
                    request["confirmation_token"], request["id"]) == [(True,)], "the token is stored hashed"

    _problem(_confirm(app, a.manager_token, request["id"], "not-the-token"), 422, "confirmation-token-invalid")
    assert _exists(app, "appointments", appointment)
    confirmed = _confirm(app, a.manager_token, request["id"], request["confirmation_token"])
    assert confirmed.status_code == 200, confirmed.text
    audit = confirmed.json()
    assert audit["id"] == request["id"] and audit["counts"] == expected
    assert audit["requested_by"] == a.manager_id and audit["confirmed_by"] == a.manager_id
    for table, key in (("appointments", None), ("consents", "consent"), ("appointment_assignments", "assignment"),
                       ("recording_sessions", "session"), ("calls", "call"), ("shunya_jobs", "job"),
                       ("call_analyses", "analysis")):
        assert not _exists(app, table, appointment if key is None else ids[key]), table
    assert _exists(app, "appointments", other), "only the target is deleted"
    _problem(_confirm(app, a.manager_token, request["id"], request["confirmation_token"]), 409,
             "deletion-not-pending")
    listed = httpx.get(f"{app.url}/api/v1/deletions", headers=auth(a.manager_token)).json()
    assert audit in listed
    _problem(httpx.get(f"{app.url}/api/v1/deletions", headers=auth(a.rep_tokens[0])), 403, "forbidden")


def test_an_expired_confirmation_deletes_nothing(app) -> None:
    a = app.tenants[0]
    appointment = _new_appointment(app, a)
    request = _request_deletion(app, a.manager_token, "appointment", appointment).json()
    _execute(app, "UPDATE deletion_requests SET expires_at = now() - interval '1 second' WHERE id = %s",
             request["id"])
    _problem(_confirm(app, a.manager_token, request["id"], request["confirmation_token"]), 409,
             "deletion-not-pending")
    assert _exists(app, "appointments", appointment)


def test_deletions_of_another_tenant_are_404_and_untouched(app) -> None:
    a, b = app.tenants
    b_appointment = _new_appointment(app, b)
    missing = _request_deletion(app, a.manager_token, "appointment", str(uuid.uuid4()))
    _problem(missing, 404, "not-found")
    probe = _request_deletion(app, a.manager_token, "appointment", b_appointment)
    assert probe.status_code == 404 and probe.json() == missing.json()
    _problem(_request_deletion(app, a.manager_token, "company", b.company_id), 404, "not-found")
    b_request = _request_deletion(app, b.manager_token, "appointment", b_appointment).json()
    missing_confirm = _confirm(app, a.manager_token, str(uuid.uuid4()), "x")
    stolen = _confirm(app, a.manager_token, b_request["id"], b_request["confirmation_token"])
    assert stolen.status_code == 404 and stolen.json()["title"] == missing_confirm.json()["title"]
    assert _exists(app, "appointments", b_appointment)
    assert sql_rows(app.database_url, "SELECT status FROM deletion_requests WHERE id = %s",
                    b_request["id"]) == [("pending",)]
    assert all(row["company_id"] == a.company_id
               for row in httpx.get(f"{app.url}/api/v1/deletions", headers=auth(a.manager_token)).json())


def test_company_deletion_keeps_only_the_company_its_managers_and_the_audit(reference_app) -> None:
    doomed_app = reference_app(tenants=2, appointments=2)
    a, b = doomed_app.tenants
    appointment = _new_appointment(doomed_app, a)
    _with_everything(doomed_app, a, appointment)
    httpx.put(f"{doomed_app.url}/api/v1/retention-policy", headers=auth(a.manager_token),
              json={"call_days": 10, "appointment_days": 10}).raise_for_status()
    first = _request_deletion(doomed_app, a.manager_token, "appointment", a.appointment_ids[0]).json()
    assert _confirm(doomed_app, a.manager_token, first["id"], first["confirmation_token"]).status_code == 200
    pending = _request_deletion(doomed_app, a.manager_token, "appointment", a.appointment_ids[1]).json()
    before_b = {t: _count(doomed_app, t, b.company_id) for t in ("appointments", "consents", "users")}

    request = _request_deletion(doomed_app, a.manager_token, "company", a.company_id).json()
    assert request["counts"]["appointments"] == 2 and request["counts"]["users"] == 3
    confirmed = _confirm(doomed_app, a.manager_token, request["id"], request["confirmation_token"])
    assert confirmed.status_code == 200, confirmed.text
    for table in ("appointments", "consents", "recording_sessions", "appointment_assignments", "calls",
                  "shunya_jobs", "call_analyses", "idempotency_keys", "task_records", "dead_letters",
                  "retention_policies"):
        assert _count(doomed_app, table, a.company_id) == 0, table
    assert sql_rows(doomed_app.database_url, "SELECT id::text, role FROM users WHERE company_id = %s",
                    a.company_id) == [(a.manager_id, "manager")]
    assert _exists(doomed_app, "companies", a.company_id)
    assert sql_rows(doomed_app.database_url, "SELECT id::text FROM deletion_requests WHERE company_id = %s "
                    "ORDER BY id", a.company_id) == sorted([(first["id"],), (request["id"],)])
    assert pending["id"] not in {r[0] for r in sql_rows(doomed_app.database_url,
                                                         "SELECT id::text FROM deletion_requests")}
    audit = httpx.get(f"{doomed_app.url}/api/v1/deletions", headers=auth(a.manager_token)).json()
    assert [row["scope"] for row in audit] == ["appointment", "company"], "the audit survives its company's deletion"
    assert {t: _count(doomed_app, t, b.company_id) for t in before_b} == before_b, "B's rows changed"


def test_a_session_start_racing_the_deletion_of_its_appointment_is_404_not_500(reference_app) -> None:
    """The start reads the appointment, sleeps in its race window, and the deletion commits meanwhile."""
    racy = reference_app(tenants=1, appointments=1, env={"STORMPROOF_RACE_DELAY_MS": "1500"})
    t = racy.tenants[0]
    appointment = t.appointment_ids[0]
    request = _request_deletion(racy, t.manager_token, "appointment", appointment).json()
    with ThreadPoolExecutor(1) as pool:
        start = pool.submit(_start, racy, t.rep_tokens[0], appointment)
        time.sleep(0.5)
        confirmed = _confirm(racy, t.manager_token, request["id"], request["confirmation_token"])
        assert confirmed.status_code == 200, confirmed.text
        _problem(start.result(timeout=30), 404, "not-found")
    assert not _exists(racy, "appointments", appointment)
