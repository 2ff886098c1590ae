"""Each new weakening against the real app: the fix on keeps its promise, the fix off breaks it.

Where a checker judges the promise, the real answers (and the real final
state) are fed to it: valid with the fix on, invalid with it off. The rows
whose checker does not judge them yet say so in ``stormproof.harness.promises.GAPS``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest

from stormproof.harness.history import vocabulary as v
from stormproof.harness.invariants import check_all
from stormproof.reference_app.settings import Settings
from stormproof.reference_app.worker.tasks import retry_delay
from tests.reference_app.helpers import auth, fire_together, new_key, sql_rows

from .recording import Recorder, snapshot

START = "/api/v1/recordings/sessions/start"
FIX = pytest.mark.parametrize("weakened", [False, True], ids=["fix-on", "fix-off"])


#: Apps kept running at once by ``apps``, the all-fixes-on one among them (it serves most tests).
_LIVE_APPS = 4


@pytest.fixture(scope="module")
def apps(reference_app_module):
    """One app per set of weakenings (and env), started on first use; the least recently used is stopped
    once more than ``_LIVE_APPS`` run (a test's fix-on and fix-off halves run one after the other, so a
    weakened app is rarely asked for again; when it is, it starts anew)."""
    started: dict[tuple, object] = {}  # in order of last use

    def get(*weakenings: str, **env: str):
        key = (weakenings, tuple(sorted(env.items())))
        app = started.pop(key, None)
        if app is None:
            app = reference_app_module(weakenings, tenants=2, appointments=4,
                                       env={"STORMPROOF_RATE_API_PER_SECOND": "0", **env},
                                       shunya={"webhook_enabled": False})
        started[key] = app
        while len(started) > _LIVE_APPS:
            reference_app_module.stop(started.pop(next(iter(started))), wait=False)
        return app

    return get


def _verdict(name: str, history, snap=None):
    from stormproof.harness.invariants import Snapshot

    (verdict,) = check_all(history, snap or Snapshot.build({}), [name])
    return verdict


def _pending_job(app, tenant) -> tuple[str, str]:
    """A submitted call of ``tenant`` and its pending Shunya job, written straight to the database:
    (the call's id, the Shunya job id a delivery names)."""
    call, job, shunya_job = str(uuid.uuid4()), str(uuid.uuid4()), f"shj_{uuid.uuid4().hex}"
    _execute(app, "INSERT INTO calls (id, company_id, status, created_at) VALUES (%s, %s, 'submitted', now())",
             call, tenant.company_id)
    _execute(app, "INSERT INTO shunya_jobs (id, company_id, call_id, shunya_job_id, status, attempts, created_at) "
                  "VALUES (%s, %s, %s, %s, 'pending', 1, now())", job, tenant.company_id, call, shunya_job)
    return call, shunya_job


def _consented_appointment(app, tenant, scopes: tuple[str, ...] = ("recording",), rec=None) -> str:
    """A new appointment of ``tenant`` with a consent of each of ``scopes`` (recorded in ``rec`` if given): no
    other test of the module holds a session on it (the seeded ones are shared by every test of an app)."""
    window = {"title": "fresh", "starts_at": "2031-02-01T10:00:00Z", "ends_at": "2031-02-01T10:30:00Z"}
    made = httpx.post(f"{app.url}/api/v1/appointments", headers=auth(tenant.manager_token), json=window)
    assert made.status_code == 201, made.text
    appointment = made.json()["id"]
    for scope in scopes:
        granted = httpx.post(f"{app.url}/api/v1/appointments/{appointment}/consents",
                             headers=auth(tenant.manager_token), json={"scope": scope, "evidence": "test"})
        assert granted.status_code == 201, granted.text
        if rec is not None:
            rec.record(v.CONSENT_GRANT, tenant.company_id, granted, appointment_id=appointment, scope=scope)
    return appointment


def _problem_type(response: httpx.Response) -> str:
    return response.json().get("type", "").rsplit("/", 1)[-1]


def _execute(app, query: str, *params: object) -> None:
    with psycopg.connect(app.database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(query, params)  # type: ignore[arg-type]


# -- B1 ----------------------------------------------------------------------------------------
@FIX
def test_idempotency_fingerprint(apps, weakened: bool) -> None:
    """Same key, another payload: 422 with the fix; the first answer replayed without it (idempotent-replay flags)."""
    app = apps(*(("idempotency-fingerprint",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    key = new_key()
    for appointment in tenant.appointment_ids[:2]:
        body = {"appointment_id": appointment}
        answer = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
        rec.record(v.SESSION_START, tenant.company_id, answer, body=body, appointment_id=appointment)
    statuses = [op.status for op in rec.history() if op.type != "invoke"]
    assert statuses == ([201, 201] if weakened else [201, 422])
    assert _verdict("idempotent-replay", rec.history()).status == ("invalid" if weakened else "valid")


@FIX
def test_replay_rerender(apps, weakened: bool) -> None:
    """Start, stop, replay the start: the stored answer (recording) with the fix; the session as it is now
    (stopped) without it, and idempotent-replay flags two different answers to one key and payload."""
    app = apps(*(("replay-rerender",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    key, appointment = new_key(), _consented_appointment(app, tenant)
    body = {"appointment_id": appointment}
    first = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    rec.record(v.SESSION_START, tenant.company_id, first, body=body, appointment_id=appointment)
    session = first.json()["id"]
    stopped = httpx.post(f"{app.url}/api/v1/recordings/sessions/{session}/stop",
                         headers=auth(tenant.rep_tokens[0], new_key()))
    rec.record(v.SESSION_STOP, tenant.company_id, stopped, session_id=session)
    replay = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    rec.record(v.SESSION_START, tenant.company_id, replay, body=body, appointment_id=appointment,
               changed_between=session)
    assert (first.status_code, stopped.status_code, replay.status_code) == (201, 200, 201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["status"] == ("stopped" if weakened else "recording")
    assert _verdict("idempotent-replay", rec.history()).status == ("invalid" if weakened else "valid")


@FIX
def test_idempotency_store_errors(apps, weakened: bool) -> None:
    """A start fails with a 500 (a trigger refuses its insert), then the trigger is gone and the client
    retries under the same key: the retry runs (201) with the fix; the stored 500 is replayed without it,
    and idempotent-replay flags it (error-replayed)."""
    app = apps(*(("idempotency-store-errors",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    key, appointment = new_key(), _consented_appointment(app, tenant)
    body = {"appointment_id": appointment}
    trigger = f"fail_{uuid.uuid4().hex[:8]}"
    _execute(app, f"CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  f"IF NEW.appointment_id = '{appointment}' THEN RAISE EXCEPTION 'injected'; END IF; "
                  f"RETURN NEW; END $$")
    _execute(app, f"CREATE TRIGGER {trigger} BEFORE INSERT ON recording_sessions FOR EACH ROW "
                  f"EXECUTE FUNCTION {trigger}()")
    try:
        failed = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
        rec.record(v.SESSION_START, tenant.company_id, failed, body=body, appointment_id=appointment)
    finally:
        _execute(app, f"DROP TRIGGER {trigger} ON recording_sessions")
        _execute(app, f"DROP FUNCTION {trigger}()")
    retried = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    rec.record(v.SESSION_START, tenant.company_id, retried, body=body, appointment_id=appointment, resend=1,
               resend_after="5xx")
    assert failed.status_code == 500, failed.text
    assert retried.status_code == (500 if weakened else 201), retried.text
    assert (retried.headers.get("Idempotent-Replayed") == "true") is weakened
    verdict = _verdict("idempotent-replay", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"error-replayed"}


@FIX
def test_id_parse_unguarded(apps, weakened: bool) -> None:
    """Path ids that are no ids (a word, a quoted SQL condition, 300 characters): 404 like any unknown id with the
    fix; parsed unguarded, each request crashes 500, and tenant-isolation flags it (malformed-id-crashed)."""
    app = apps(*(("id-parse-unguarded",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    for bad in ("not-an-id", "%27%20OR%20%271%27%3D%271", "a" * 300):
        path = f"/api/v1/appointments/{bad}"
        answer = httpx.get(app.url + path, headers=auth(tenant.manager_token))
        rec.record(v.PROBE, tenant.company_id, answer, target_tenant=None, target_id=bad, malformed_id=True,
                   control=True, method="GET", path=path, route="GET /api/v1/appointments/{appointment_id}",
                   probe_id=uuid.uuid4().hex, as_role="manager")
        assert answer.status_code == (500 if weakened else 404), answer.text
    verdict = _verdict("tenant-isolation", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"malformed-id-crashed"}


@FIX
def test_busy_stored(apps, weakened: bool) -> None:
    """A keyed start meets its appointment's lock held past the app's wait (held here in Redis, as a slow start
    holds it): 409 resource-busy, "retry", nothing run. Once the lock is free the client retries under the same
    key: the retry runs (201) with the fix; without it the stored 409 is replayed, and idempotent-replay flags
    it (retry-replayed)."""
    import redis

    app = apps(*(("busy-stored",) if weakened else ()), STORMPROOF_LOCK_WAIT_MS="100")
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    key, appointment = new_key(), _consented_appointment(app, tenant)
    body = {"appointment_id": appointment}
    holder = redis.Redis.from_url(app.redis_url)
    lock = f"recording_session:start:{appointment}"
    assert holder.set(lock, "another-start", px=30_000, nx=True)
    try:
        busy = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
        rec.record(v.SESSION_START, tenant.company_id, busy, body=body, appointment_id=appointment)
    finally:
        holder.delete(lock)
        holder.close()
    retried = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], key), json=body)
    rec.record(v.SESSION_START, tenant.company_id, retried, body=body, appointment_id=appointment, after_busy=1)
    assert busy.status_code == 409 and busy.json()["type"].endswith("/resource-busy"), busy.text
    assert retried.status_code == (409 if weakened else 201), retried.text
    assert (retried.headers.get("Idempotent-Replayed") == "true") is weakened
    verdict = _verdict("idempotent-replay", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"retry-replayed"}


@FIX
def test_idempotency_in_flight(apps, weakened: bool) -> None:
    """Same key while the first runs: 409 idempotency-key-in-flight with the fix; the request runs again without."""
    app = apps(*(("idempotency-in-flight",) if weakened else ()), STORMPROOF_RACE_DELAY_MS="800")
    tenant = app.tenants[0]
    key, body = new_key(), {"appointment_id": tenant.appointment_ids[2]}
    headers = auth(tenant.rep_tokens[0], key)
    answers = asyncio.run(fire_together(app.url, [("POST", START, headers, body)] * 2))
    refused = [r for r in answers if r.status_code == 409]
    assert sorted(r.status_code for r in answers) == [201, 409]
    expected = "active-session-exists" if weakened else "idempotency-key-in-flight"
    assert _problem_type(refused[0]) == expected
    if not weakened:
        assert refused[0].headers["Retry-After"] == "1"


@FIX
def test_idempotency_key_required(apps, weakened: bool) -> None:
    """No key on a route that requires one: 400 with the fix; the write runs without it."""
    app = apps(*(("idempotency-key-required",) if weakened else ()))
    tenant = app.tenants[0]
    answer = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0]),
                        json={"appointment_id": tenant.appointment_ids[3]})
    if weakened:
        assert answer.status_code == 201
    else:
        assert answer.status_code == 400 and _problem_type(answer) == "idempotency-key-missing"


@FIX
def test_idempotency_tenant_scope(apps, weakened: bool) -> None:
    """Tenant B reusing A's key gets its own call with the fix; A's stored call without it (tenant-isolation flags)."""
    app = apps(*(("idempotency-tenant-scope",) if weakened else ()))
    a, b = app.tenants
    rec = Recorder([t.company_id for t in app.tenants])
    key = new_key()
    for tenant in (a, b):
        answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, key), json={})
        assert answer.status_code == 202, answer.text
        rec.record(v.CALL_SUBMIT, tenant.company_id, answer, body={})
    ids = [op.result["id"] for op in rec.history() if op.type == "ok"]
    assert (ids[0] == ids[1]) is weakened
    assert _verdict("tenant-isolation", rec.history(), snapshot(app.database_url)).status == (
        "invalid" if weakened else "valid")


@FIX
def test_rate_limit_per_tenant(apps, weakened: bool) -> None:
    """Tenant A floods (40 requests at once) while quiet tenant B sends two: B is served with the fix (its own
    allowance, burst 5, covers them whatever the timing); without it B shares A's exhausted allowance and is
    refused, and rate-limit-enforced flags B's 429 (quiet-tenant-limited). Which of the 42 requests the shared
    allowance admits is up to arrival order, so the weakened case tries up to three bursts (each leaves B both
    requests admitted about 3 times in 100) and says so if none refused B."""
    from stormproof.harness.invariants import CheckConfig, Snapshot

    app = apps(*(("rate-limit-per-tenant",) if weakened else ()), STORMPROOF_RATE_API_PER_SECOND="1",
               STORMPROOF_RATE_API_BURST="5")
    a, b = app.tenants
    rec = Recorder([t.company_id for t in app.tenants])

    def read(tenant) -> tuple[str, str, dict[str, str], None]:
        return "GET", f"/api/v1/appointments/{tenant.appointment_ids[0]}", auth(tenant.manager_token), None

    quiet: list[int] = []
    for attempt in range(3):
        answers = asyncio.run(fire_together(app.url, [read(a)] * 40 + [read(b)] * 2))
        # The recorder gives each answer its own moment, one after the other; sent at once, the ones the
        # allowance admitted arrived first, so A's are recorded admitted first, as the limiter saw them.
        flood = sorted(answers[:40], key=lambda answer: answer.status_code == 429)
        for tenant, answer in zip([a] * 40 + [b] * 2, flood + answers[40:]):
            rec.record(v.APPOINTMENT_READ, tenant.company_id, answer, appointment_id=tenant.appointment_ids[0])
        quiet = [answer.status_code for answer in answers[40:]]
        if not weakened or 429 in quiet:
            break
        time.sleep(6)  # the shared allowance refills before the next burst
    if weakened:
        assert 429 in quiet, f"B was never refused in 3 bursts: {quiet}"
    else:
        assert quiet == [200, 200], quiet
    config = CheckConfig(rate_limit_per_s=1, rate_limit_burst=5)
    verdict = _verdict("rate-limit-enforced", rec.history(), Snapshot.build({}, config=config))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict.violations


@FIX
def test_rate_limit_counts_refusals(apps, weakened: bool) -> None:
    """Tenant A sends 25 reads a second for 7 s, one after the other, at 5/s, burst 5: with the fix about 5 a
    second get through all along; without it (refusals spend the allowance) none after the burst, and
    rate-limit-enforced flags the refusals more than 4 s from any request let through (limit-starves)."""
    from stormproof.harness.invariants import CheckConfig, Snapshot
    from tests.invariants.builders import HistoryBuilder

    app = apps(*(("rate-limit-counts-refusals",) if weakened else ()), STORMPROOF_RATE_API_PER_SECOND="5",
               STORMPROOF_RATE_API_BURST="5")
    tenant = app.tenants[0]
    builder, origin, statuses = HistoryBuilder(), time.monotonic(), []
    with httpx.Client(base_url=app.url, headers=auth(tenant.manager_token), timeout=10) as client:
        for n in range(175):  # bounded: 175 requests, about 7 s
            time.sleep(max(0.0, origin + n / 25 - time.monotonic()))
            sent = (time.monotonic() - origin) * 1000
            answer = client.get(f"/api/v1/appointments/{tenant.appointment_ids[0]}")
            invoke = builder.invoke(v.APPOINTMENT_READ, sent, tenant=tenant.company_id,
                                    appointment_id=tenant.appointment_ids[0])
            builder.complete(invoke, (time.monotonic() - origin) * 1000, answer.status_code)
            statuses.append(answer.status_code)
    let_through_late = statuses[125:].count(200)  # in the last 2 s
    assert (let_through_late == 0) if weakened else (let_through_late >= 5), statuses
    config = CheckConfig(rate_limit_per_s=5, rate_limit_burst=5)
    verdict = _verdict("rate-limit-enforced", builder.build(), Snapshot.build({}, config=config))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict.violations
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"limit-starves"}


@FIX
def test_rate_limit_atomic(stormproof_redis, weakened: bool) -> None:
    """40 checks of one tenant at once, at 5/s, burst 5, against a real Redis: with the fix (one script) at most
    6 pass; without it (GET, then SET) the checks read the arrival time before any wrote it, and far more pass,
    which rate-limit-enforced flags as over-limit (noisy-tenant)."""
    import asyncio
    import uuid

    import redis.asyncio as aioredis

    from stormproof.reference_app.services.rate_limit import Limit, RateLimiter

    async def burst() -> int:
        client = aioredis.from_url(stormproof_redis.url_for(60))
        try:
            limiter = RateLimiter(client, atomic=not weakened)
            tenant = uuid.uuid4()
            decisions = await asyncio.gather(*(limiter.check(Limit("api", 5, 5), tenant) for _ in range(40)))
            return sum(d.allowed for d in decisions)
        finally:
            await client.aclose()

    allowed = asyncio.run(burst())
    assert (allowed > 10) if weakened else (allowed <= 6), allowed


@FIX
def test_retry_after_units(apps, weakened: bool) -> None:
    """Five reads in a row under an API limit of 1/s (burst 1): the refused ones say Retry-After 1 with the fix;
    1000 without it (milliseconds), and rate-limit-enforced flags each (retry-after-too-long)."""
    from stormproof.harness.invariants import CheckConfig, Snapshot

    app = apps(*(("retry-after-units",) if weakened else ()), STORMPROOF_RATE_API_PER_SECOND="1",
               STORMPROOF_RATE_API_BURST="1")
    tenant = app.tenants[1]
    rec = Recorder([t.company_id for t in app.tenants])
    with httpx.Client(base_url=app.url, headers=auth(tenant.manager_token), timeout=10) as client:
        answers = [client.get(f"/api/v1/appointments/{tenant.appointment_ids[0]}") for _ in range(5)]
    for answer in answers:
        rec.record(v.APPOINTMENT_READ, tenant.company_id, answer, appointment_id=tenant.appointment_ids[0])
    waits = {answer.headers.get("Retry-After") for answer in answers if answer.status_code == 429}
    assert waits == ({"1000"} if weakened else {"1"}), [a.status_code for a in answers]
    config = CheckConfig(rate_limit_per_s=1, rate_limit_burst=1)
    verdict = _verdict("rate-limit-enforced", rec.history(), Snapshot.build({}, config=config))
    assert {x.details["type"] for x in verdict.violations} == ({"retry-after-too-long"} if weakened else set())


@FIX
def test_tenant_guard_reps(apps, weakened: bool) -> None:
    """A rep of tenant A reads tenant B's appointment by id, then a missing one: 404 alike with the fix (as for a
    manager); B's appointment without it (tenant-isolation flags the probe). A's manager gets 404 either way."""
    app = apps(*(("tenant-guard-reps",) if weakened else ()))
    a, b = app.tenants
    rec = Recorder([t.company_id for t in app.tenants])
    for role, token in (("manager", a.manager_token), ("rep", a.rep_tokens[0])):
        probe_id = new_key()
        for control, target in ((False, b.appointment_ids[0]), (True, str(uuid.uuid4()))):
            path = f"/api/v1/appointments/{target}"
            answer = httpx.get(app.url + path, headers=auth(token))
            leaked = weakened and role == "rep" and not control
            assert answer.status_code == (200 if leaked else 404), answer.text
            rec.record(v.PROBE, a.company_id, answer, method="GET", route="GET /api/v1/appointments/{appointment_id}",
                       probe_id=probe_id, path=path, target_id=target, control=control, as_role=role,
                       target_tenant=None if control else b.company_id)
    verdict = _verdict("tenant-isolation", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_company_deletion_target(apps, weakened: bool) -> None:
    """Tenant A's manager asks to delete tenant B's company, then a missing one: 404 alike with the fix; a pending
    request naming B without it (tenant-isolation flags the probe)."""
    app = apps(*(("company-deletion-target",) if weakened else ()))
    a, b = app.tenants
    rec = Recorder([t.company_id for t in app.tenants])
    probe_id = new_key()
    for control, target in ((False, b.company_id), (True, str(uuid.uuid4()))):
        body = {"scope": "company", "target_id": target}
        answer = httpx.post(f"{app.url}/api/v1/deletions", headers=auth(a.manager_token, new_key()), json=body)
        assert answer.status_code == (201 if weakened and not control else 404), answer.text
        rec.record(v.PROBE, a.company_id, answer, method="POST", route="POST /api/v1/deletions", probe_id=probe_id,
                   path="/api/v1/deletions", target_id=target, control=control, as_role="manager",
                   target_tenant=None if control else b.company_id, body_field="target_id")
    verdict = _verdict("tenant-isolation", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


_CREATE = "POST /api/v1/appointments"
_CONSENTS = "POST /api/v1/appointments/{appointment_id}/consents"


def _malformed(app, rec, tenant, route: str, path: str, case: str, field: str, body) -> httpx.Response:
    answer = httpx.request(route.split()[0], app.url + path, headers=auth(tenant.manager_token, new_key()),
                           json=body)
    rec.record(v.PROBE_MALFORMED, tenant.company_id, answer, route=route, case=case, field=field,
               method=route.split()[0], path=path, probe_id=new_key())
    return answer


@FIX
def test_storable_text(apps, weakened: bool) -> None:
    """A NUL in an appointment's title and in a consent's evidence: 422 with the fix (PostgreSQL's text cannot
    hold it); without it, the NUL reaches the database and the write answers 500 (input-validated:
    malformed-crashed)."""
    app = apps(*(("storable-text",) if weakened else ()))
    (a, _) = app.tenants
    rec = Recorder([t.company_id for t in app.tenants])
    window = {"starts_at": "2031-03-01T10:00:00Z", "ends_at": "2031-03-01T11:00:00Z"}
    made = _malformed(app, rec, a, _CREATE, "/api/v1/appointments", "nul", "title", {"title": "a\x00b", **window})
    consent = _malformed(app, rec, a, _CONSENTS, f"/api/v1/appointments/{a.appointment_ids[0]}/consents", "nul",
                         "evidence", {"scope": "recording", "evidence": "signed\x00"})
    assert [made.status_code, consent.status_code] == ([500, 500] if weakened else [422, 422]), made.text
    verdict = _verdict("input-validated", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    assert verdict.summary["malformed_judged"] == 2


@FIX
def test_appointment_window_checked(apps, weakened: bool) -> None:
    """An appointment whose window has no offset, or ends before it starts: 422 with the fix; without it the
    first is created (201: malformed-accepted) and the second is either created or crashes on the database's
    own range check (both flagged by input-validated)."""
    app = apps(*(("appointment-window-checked",) if weakened else ()))
    (a, _) = app.tenants
    rec = Recorder([t.company_id for t in app.tenants])
    naive = _malformed(app, rec, a, _CREATE, "/api/v1/appointments", "naive-datetime", "starts_at",
                       {"title": "naive", "starts_at": "2031-03-02T10:00:00", "ends_at": "2031-03-02T11:00:00Z"})
    inverted = _malformed(app, rec, a, _CREATE, "/api/v1/appointments", "inverted-window", "starts_at,ends_at",
                          {"title": "inverted", "starts_at": "2031-03-02T11:00:00Z", "ends_at": "2031-03-02T10:00:00Z"})
    if weakened:
        assert naive.status_code == 201 and inverted.status_code in (201, 500), (naive.text, inverted.text)
    else:
        assert [naive.status_code, inverted.status_code] == [422, 422], (naive.text, inverted.text)
    verdict = _verdict("input-validated", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_list_filter_tenant(apps, weakened: bool) -> None:
    """Tenant A lists its appointments filtered by tenant B's rep (assigned one of B's): an empty list with the
    fix, as for a rep nobody has; B's appointment without it (tenant-isolation flags the answer)."""
    app = apps(*(("list-filter-tenant",) if weakened else ()))
    a, b = app.tenants
    assigned = httpx.post(f"{app.url}/api/v1/appointments/{b.appointment_ids[3]}/assign",
                          headers=auth(b.manager_token, new_key()), json={"rep_id": b.rep_ids[2]})
    assert assigned.status_code in (200, 201), assigned.text
    rec = Recorder([t.company_id for t in app.tenants])
    probe_id = new_key()
    for control, rep in ((False, b.rep_ids[2]), (True, str(uuid.uuid4()))):
        answer = httpx.get(f"{app.url}/api/v1/appointments?assigned_rep_id={rep}", headers=auth(a.manager_token))
        assert answer.status_code == 200, answer.text
        assert (answer.json() != []) is (weakened and not control), answer.text
        rec.record(v.PROBE, a.company_id, answer, method="GET", route="GET /api/v1/appointments", probe_id=probe_id,
                   path=f"/api/v1/appointments?assigned_rep_id={rep}", target_id=rep, control=control,
                   target_tenant=None if control else b.company_id, query_field="assigned_rep_id")
    verdict = _verdict("tenant-isolation", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_tenant_from_query(apps, weakened: bool) -> None:
    """Tenant A lists appointments with ?company_id= naming tenant B: its own appointments with the fix (the token
    decides); B's without it (tenant-isolation flags the answer: foreign-data)."""
    app = apps(*(("tenant-from-query",) if weakened else ()))
    a, b = app.tenants
    rec = Recorder([t.company_id for t in app.tenants])
    path = f"/api/v1/appointments?company_id={b.company_id}"
    answer = httpx.get(app.url + path, headers=auth(a.manager_token))
    assert answer.status_code == 200, answer.text
    assert ({row["company_id"] for row in answer.json()} == {b.company_id}) is weakened, answer.text
    rec.record(v.PROBE_FILTER, a.company_id, answer, method="GET", route="GET /api/v1/appointments", path=path,
               query_field="company_id", value=b.company_id, target_tenant=b.company_id)
    verdict = _verdict("tenant-isolation", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_dead_letter_filter_tenant(apps, weakened: bool) -> None:
    """Tenant A lists its dead letters filtered by status: its own letters only with the fix; B's seeded letter
    too without it (tenant-isolation flags the answer: foreign-data)."""
    app = apps(*(("dead-letter-filter-tenant",) if weakened else ()))
    a, b = app.tenants
    theirs = str(uuid.uuid4())
    _execute(app, "INSERT INTO dead_letters (id, company_id, task_id, task_name, args, error, attempts, status) "
                  "VALUES (%s, %s, %s, 'poll_shunya_job', '{}', 'seeded', 1, 'dead')", theirs, b.company_id,
             uuid.uuid4().hex)
    rec = Recorder([t.company_id for t in app.tenants])
    path = "/api/v1/dead-letters?status=dead&limit=500"
    answer = httpx.get(app.url + path, headers=auth(a.manager_token))
    assert answer.status_code == 200, answer.text
    assert (theirs in {row["id"] for row in answer.json()}) is weakened, answer.text
    rec.record(v.PROBE_FILTER, a.company_id, answer, method="GET", route="GET /api/v1/dead-letters", path=path,
               query_field="status", value="dead")
    verdict = _verdict("tenant-isolation", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_rate_limit_per_user(apps, weakened: bool) -> None:
    """Forty reads at once from one tenant, ten from each of its users (the manager and three reps), at 1/s,
    burst 5: with the fix the tenant's one allowance admits about six; without it each user's own allowance
    admits about six, over twenty in all, and rate-limit-enforced flags the tenant (over-limit)."""
    from stormproof.harness.invariants import CheckConfig, Snapshot

    app = apps(*(("rate-limit-per-user",) if weakened else ()), STORMPROOF_RATE_API_PER_SECOND="1",
               STORMPROOF_RATE_API_BURST="5")
    tenant = app.tenants[0]
    tokens = [tenant.manager_token, *tenant.rep_tokens][:4]
    assert len(tokens) == 4, "the seed gives each tenant a manager and three reps"
    path = f"/api/v1/appointments/{tenant.appointment_ids[0]}"
    answers = asyncio.run(fire_together(app.url, [("GET", path, auth(tokens[k % 4]), None) for k in range(40)]))
    admitted = sum(answer.status_code != 429 for answer in answers)
    assert (admitted > 12) is weakened, [answer.status_code for answer in answers]
    rec = Recorder([t.company_id for t in app.tenants])
    for answer in sorted(answers, key=lambda answer: answer.status_code == 429):  # admitted first, as decided
        rec.record(v.APPOINTMENT_READ, tenant.company_id, answer, appointment_id=tenant.appointment_ids[0])
    config = CheckConfig(rate_limit_per_s=1, rate_limit_burst=5)
    verdict = _verdict("rate-limit-enforced", rec.history(), Snapshot.build({}, config=config))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict.violations


def _submit_together(app, tenant, count: int) -> tuple[Recorder, list[httpx.Response]]:
    """``count`` keyed call submissions of ``tenant`` sent at once, recorded."""
    rec = Recorder([t.company_id for t in app.tenants])
    calls = [("POST", "/api/v1/calls", auth(tenant.manager_token, new_key()), {}) for _ in range(count)]
    answers = asyncio.run(fire_together(app.url, calls))
    for answer in answers:
        rec.record(v.CALL_SUBMIT, tenant.company_id, answer, body={})
    return rec, answers


@FIX
def test_rate_limit_tasks(apps, weakened: bool) -> None:
    """Ten call submissions at once under a task limit of 1/s (burst 1), the API limit off: with the fix one is
    accepted and nine answer 429 rate-limited with Retry-After; without it all ten queue their task, and
    rate-limit-enforced flags the window (task-over-limit)."""
    from stormproof.harness.invariants import CheckConfig, Snapshot

    app = apps(*(("rate-limit-tasks",) if weakened else ()), STORMPROOF_RATE_TASKS_PER_SECOND="1")
    rec, answers = _submit_together(app, app.tenants[0], 10)
    statuses = sorted(answer.status_code for answer in answers)
    if weakened:
        assert statuses == [202] * 10, statuses
    else:
        # One, or two if the ten took over a second to arrive (a loaded machine): the allowance refilled once.
        assert statuses.count(202) in (1, 2) and statuses.count(429) == 10 - statuses.count(202), statuses
        refused = next(answer for answer in answers if answer.status_code == 429)
        assert _problem_type(refused) == "rate-limited" and refused.headers.get("Retry-After"), dict(refused.headers)
    config = CheckConfig(task_rate_per_s=1, task_rate_burst=1)
    verdict = _verdict("rate-limit-enforced", rec.history(), Snapshot.build({}, config=config))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict.violations


@FIX
def test_shunya_limit(reference_app_module, weakened: bool) -> None:
    """Two calls submitted, their jobs polled every 100 ms for 1.5 s, under a Shunya limit of 1/s (burst 1):
    with the fix the stub serves at most a call and a half a second of the tenant's; without it every poll
    goes out, and rate-limit-enforced flags the windows from the stub's log (shunya-over-limit)."""
    from stormproof.harness.invariants import CheckConfig, Snapshot
    from tests.reference_app.background import ledger_settled, wait_for

    app = reference_app_module(("shunya-limit",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0", "STORMPROOF_RATE_SHUNYA_PER_SECOND": "1",
                                    "STORMPROOF_POLL_INTERVAL_MS": "100"},
                               shunya={"complete_after_ms": 1500, "webhook_enabled": False})
    tenant = app.tenants[0]
    for _ in range(2):
        answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
        assert answer.status_code == 202, answer.text
    wait_for(lambda: ledger_settled(app) and sql_rows(app.database_url, "SELECT count(*) FROM call_analyses")[0][0]
             == 2, timeout=60, what="every job to be applied")
    calls = [(float(at), str(who)) for at, who in httpx.get(f"{app.shunya_url}/admin/calls").json()["calls"]]
    assert {who for _, who in calls} == {str(tenant.company_id)} and len(calls) >= 4  # 2 creations, 2+ polls
    config = CheckConfig(shunya_rate_per_s=1, shunya_rate_burst=1)
    verdict = _verdict("rate-limit-enforced", Recorder([]).history(), Snapshot.build({}, upstream_calls=calls,
                                                                                     config=config))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict.violations
    assert {x.details["type"] for x in verdict.violations} == ({"shunya-over-limit"} if weakened else set())


@FIX
def test_rate_limit_not_stored(apps, weakened: bool) -> None:
    """Three keyed submissions at once under a task limit of 1/s: two are refused 429. Sent again with its key
    after its Retry-After, a refused one runs (202) with the fix; without it the key answers the stored 429,
    replayed and without Retry-After, and rate-limit-enforced flags both."""
    from stormproof.harness.invariants import CheckConfig, Snapshot

    app = apps(*(("rate-limit-not-stored",) if weakened else ()), STORMPROOF_RATE_TASKS_PER_SECOND="1")
    tenant = app.tenants[1]  # not test_rate_limit_tasks's: the fixed app is shared, and so is its allowance
    rec, answers = _submit_together(app, tenant, 3)
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused, [answer.status_code for answer in answers]
    time.sleep(float(refused[0].headers.get("Retry-After") or 1) + 0.5)
    again = httpx.post(f"{app.url}/api/v1/calls", headers=dict(refused[0].request.headers), json={})
    rec.record(v.CALL_SUBMIT, tenant.company_id, again, body={})
    if weakened:
        assert again.status_code == 429 and again.headers.get("Idempotent-Replayed") == "true"
    else:
        assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") != "true", again.text
    config = CheckConfig(task_rate_per_s=1, task_rate_burst=1)
    verdict = _verdict("rate-limit-enforced", rec.history(), Snapshot.build({}, config=config))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict.violations
    if weakened:
        assert {v.details["type"] for v in verdict.violations} == {"limit-replayed", "limit-without-retry-after"}


@FIX
def test_idempotency_expiry(apps, weakened: bool) -> None:
    """A key older than the TTL runs as new with the fix; it still replays without it."""
    app = apps(*(("idempotency-expiry",) if weakened else ()), STORMPROOF_IDEMPOTENCY_TTL_SECONDS="1")
    tenant = app.tenants[1]
    key = new_key()
    first = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, key), json={})
    assert first.status_code == 202
    time.sleep(1.5)
    again = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, key), json={})
    assert again.status_code == 202
    assert (again.headers.get("Idempotent-Replayed") == "true") is weakened
    assert (again.json()["id"] == first.json()["id"]) is weakened


# -- D2 ----------------------------------------------------------------------------------------
@FIX
def test_tenant_404(apps, weakened: bool) -> None:
    """Another tenant's id answers the 404 of a missing id with the fix; 403 (it exists) without it."""
    app = apps(*(("tenant-404",) if weakened else ()))
    a, b = app.tenants
    path = f"{app.url}/api/v1/appointments/"
    foreign = httpx.get(path + b.appointment_ids[0], headers=auth(a.manager_token))
    missing = httpx.get(path + str(uuid.uuid4()), headers=auth(a.manager_token))
    assert missing.status_code == 404
    if weakened:
        assert foreign.status_code == 403
    else:
        assert (foreign.status_code, foreign.json()) == (404, missing.json())
    assert httpx.get(path + a.appointment_ids[0], headers=auth(a.manager_token)).status_code == 200


# -- C1 and E1 ---------------------------------------------------------------------------------
@FIX
def test_retry_backoff(weakened: bool) -> None:
    """Retries back off exponentially with full jitter with the fix; a fixed delay without it."""
    settings = Settings(database_url="postgresql://x", redis_url="redis://x", task_backoff_base_ms=1000,
                        task_backoff_cap_ms=60_000,
                        weakenings=frozenset({"retry-backoff"}) if weakened else frozenset())
    rng = random.Random(7)
    delays = {n: [retry_delay(settings, n, rng) for _ in range(200)] for n in range(5)}
    if weakened:
        assert {d for ds in delays.values() for d in ds} == {1.0}
    else:
        assert all(0 <= d <= min(60, 2 ** n) for n, ds in delays.items() for d in ds)
        assert max(delays[4]) > 8 and len(set(delays[0])) > 100, "exponential, and jittered"


@FIX
def test_outbox_sweep(stormproof_database, stormproof_redis, reference_app_template, weakened: bool) -> None:
    """A row published an hour ago and never begun (its message lost) is re-armed by the sweep with the fix, for
    the relay to publish again; without, it stays published and nothing will ever run its task."""
    from stormproof.reference_app.context import build_context
    from stormproof.reference_app.worker.celery_app import POLL_TASK

    url = stormproof_database(reference_app_template).sqlalchemy_url
    settings = Settings(database_url=url, redis_url=stormproof_redis.url_for(62), environment="test",
                        outbox_redeliver_seconds=1,
                        weakenings=frozenset({"outbox-sweep"}) if weakened else frozenset())
    sql_rows(url, "INSERT INTO outbox (task_id, name, kwargs, due_at, published_at, publications, "
                  "started_publication, created_at) VALUES ('lost', %s, '{}', now() - interval '1 hour', "
                  "now() - interval '1 hour', 1, 0, now() - interval '1 hour') RETURNING task_id", POLL_TASK)

    async def sweep() -> int:
        ctx = build_context(settings, pool_size=2)
        try:
            return await ctx.tasks.outbox.sweep()
        finally:
            await ctx.aclose()

    swept = asyncio.run(sweep())
    assert dict(sql_rows(url, "SELECT task_id, published_at IS NULL FROM outbox")) == {"lost": not weakened}
    assert swept == (0 if weakened else 1)


@FIX
def test_outbox_due(stormproof_database, stormproof_redis, reference_app_template, weakened: bool) -> None:
    """A retry written to the outbox with its backoff's due time is held until then with the fix; the relay
    publishes it at once without (so the task runs before the wait it chose: retried-early)."""
    from stormproof.reference_app.context import build_context
    from stormproof.reference_app.worker.celery_app import POLL_TASK

    url = stormproof_database(reference_app_template).sqlalchemy_url
    settings = Settings(database_url=url, redis_url=stormproof_redis.url_for(61), environment="test",
                        weakenings=frozenset({"outbox-due"}) if weakened else frozenset())
    for task_id, wait in (("later", 3600), ("due", -1)):
        sql_rows(url, "INSERT INTO outbox (task_id, name, kwargs, due_at, publications, started_publication, "
                      "created_at) VALUES (%s, %s, '{}', now() + make_interval(secs => %s), 1, 1, now()) "
                      "RETURNING task_id", task_id, POLL_TASK, wait)

    async def publish() -> int:
        ctx = build_context(settings, pool_size=2)
        try:
            return await ctx.tasks.outbox.publish()
        finally:
            await ctx.aclose()

    published = asyncio.run(publish())
    rows = dict(sql_rows(url, "SELECT task_id, published_at IS NOT NULL FROM outbox"))
    assert rows == {"due": True, "later": weakened}
    assert published == (2 if weakened else 1)


def _retries_allowed(stormproof_database, stormproof_redis, reference_app_template, db: int,
                     weakenings: frozenset[str]) -> list[tuple[str, bool]]:
    """Four retries of tenant A at once, then one of tenant B, against a budget of 1 a second, burst 2."""
    from stormproof.reference_app.context import build_context

    url = stormproof_database(reference_app_template).sqlalchemy_url
    settings = Settings(database_url=url, redis_url=stormproof_redis.url_for(db), environment="test",
                        retry_budget_per_second=1, retry_budget_burst=2, weakenings=weakenings)
    a, b = uuid.uuid4(), uuid.uuid4()

    async def ask() -> list[tuple[str, bool]]:
        ctx = build_context(settings, pool_size=2)
        try:
            return [(name, await ctx.tasks.retry_allowed(tenant)) for name, tenant in
                    (("A", a), ("A", a), ("A", a), ("A", a), ("B", b))]
        finally:
            await ctx.aclose()

    return asyncio.run(ask())


@FIX
def test_tenant_retry_budget(stormproof_database, stormproof_redis, reference_app_template, weakened: bool) -> None:
    """A tenant's retries past its budget are refused with the fix; all allowed without."""
    allowed = _retries_allowed(stormproof_database, stormproof_redis, reference_app_template, 60,
                               frozenset({"tenant-retry-budget"}) if weakened else frozenset())
    assert [ok for _, ok in allowed] == ([True] * 5 if weakened else [True, True, False, False, True])


@FIX
def test_tenant_retry_budget_shared(stormproof_database, stormproof_redis, reference_app_template,
                                    weakened: bool) -> None:
    """Tenant A spending its budget leaves tenant B's whole with the fix; B is refused too without."""
    allowed = _retries_allowed(stormproof_database, stormproof_redis, reference_app_template, 59,
                               frozenset({"tenant-retry-budget-shared"}) if weakened else frozenset())
    assert allowed[-1] == ("B", not weakened) and [ok for _, ok in allowed[:4]] == [True, True, False, False]


@FIX
def test_trace_propagation(apps, weakened: bool) -> None:
    """The request's trace id reaches its task's record with the fix; the task loses it without."""
    app = apps(*(("trace-propagation",) if weakened else ()))
    tenant = app.tenants[0]
    trace = f"trace-{uuid.uuid4().hex}"
    answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, **{"X-Trace-Id": trace}),
                        json={})
    assert answer.status_code == 202 and answer.headers["X-Trace-Id"] == trace
    traced = sql_rows(app.database_url, "SELECT count(*) FROM task_records WHERE trace_id = %s", trace)[0][0]
    assert (traced == 0) is weakened


@FIX
def test_task_log_trace(reference_app_module, weakened: bool) -> None:
    """A call submitted with a trace id: its submit task's record carries the id either way; the task's
    end-of-run log line carries it too with the fix, none without. trace-echoed flags the second from the
    worker's log (trace-not-in-task-log)."""
    from dataclasses import replace

    from stormproof.harness.runner.task_logs import read_task_log_traces
    from tests.reference_app.background import wait_for

    app = reference_app_module(("task-log-trace",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0"}, shunya={"webhook_enabled": False})
    tenant = app.tenants[0]
    trace = f"trace-{uuid.uuid4().hex}"
    answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key(),
                                                               **{"X-Trace-Id": trace}), json={})
    assert answer.status_code == 202, answer.text
    task = sql_rows(app.database_url, "SELECT task_id FROM task_records WHERE trace_id = %s", trace)[0][0]

    def logged() -> tuple[str | None, ...]:
        return (read_task_log_traces(app.stack.log_dir) or {}).get(task, ())

    wait_for(lambda: bool(logged()), timeout=30, what="the submit task's end-of-run log line")
    assert set(logged()) == ({None} if weakened else {trace})
    rec = Recorder([t.company_id for t in app.tenants])
    rec.record(v.CALL_SUBMIT, tenant.company_id, answer, body={}, trace_id=trace)
    final = replace(snapshot(app.database_url), task_log_traces=read_task_log_traces(app.stack.log_dir))
    verdict = _verdict("trace-echoed", rec.history(), final)
    flagged = {x.details["type"] for x in verdict.violations}
    assert ("trace-not-in-task-log" in flagged) is weakened, verdict


# -- F1 and F2 ---------------------------------------------------------------------------------
@FIX
def test_retention_defaults(apps, weakened: bool) -> None:
    """Without a policy, a 100-day-old call goes at a retention run with the fix; it stays without.

    retention-enforced flags the second."""
    app = apps(*(("retention-defaults",) if weakened else ()))
    tenant = app.tenants[1]
    old = str(uuid.uuid4())
    _execute(app, "INSERT INTO calls (id, company_id, status, created_at) VALUES (%s, %s, 'completed', %s)",
             old, tenant.company_id, datetime.now(timezone.utc) - timedelta(days=100))
    rec = Recorder([t.company_id for t in app.tenants])
    run = httpx.post(f"{app.url}/api/v1/admin/retention/run", headers=auth(tenant.manager_token))
    assert run.status_code == 200, run.text
    rec.builder.call(v.RETENTION_RUN, 10, 20, 200, tenant=tenant.company_id, result={"company_id": tenant.company_id})
    history = rec.history()
    kept = bool(sql_rows(app.database_url, "SELECT 1 FROM calls WHERE id = %s", old))
    assert kept is weakened
    # The builder's wall clock is synthetic: judge at the real time of the run.
    verdict = _verdict("retention-enforced", _at_wall(history, time.time()), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


_RETAINED_TABLES = {"call": "calls", "appointment": "appointments", "audit": "deletion_audit"}


def _retention_run_keeps(app, runner, kind: str, row: str, owner: str, at: datetime, weakened: bool,
                         checker: str, rule: str) -> None:
    """``runner`` runs retention; the ``kind`` row ``row`` of ``owner`` dated ``at`` must stay (with the fix) and
    go (weakened), and ``checker`` judges the recorded run valid, or invalid for ``rule`` alone."""
    rec = Recorder([t.company_id for t in app.tenants])
    run = httpx.post(f"{app.url}/api/v1/admin/retention/run", headers=auth(runner.manager_token))
    rec.record(v.RETENTION_RUN, runner.company_id, run,
               rows=[{"kind": kind, "id": row, "company_id": owner, "at": at.timestamp()}])
    assert run.status_code == 200, run.text
    kept = bool(sql_rows(app.database_url, f"SELECT 1 FROM {_RETAINED_TABLES[kind]} WHERE id = %s", row))
    assert kept is not weakened
    # The recorder's wall clock is synthetic: judge at the real time of the run.
    verdict = _verdict(checker, _at_wall(rec.history(), time.time()), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {rule}


@FIX
def test_retention_tenant_scope(apps, weakened: bool) -> None:
    """A tenant with a 30-day policy runs retention: another tenant's 60-day-old call (within its 90-day default)
    stays with the fix; it goes without. retention-enforced flags the second (retained-call-deleted)."""
    app = apps(*(("retention-tenant-scope",) if weakened else ()))
    short, other = app.tenants
    policy = httpx.put(f"{app.url}/api/v1/retention-policy", headers=auth(short.manager_token),
                       json={"call_days": 30, "appointment_days": 100})
    assert policy.status_code == 200, policy.text
    call, created = str(uuid.uuid4()), datetime.now(timezone.utc) - timedelta(days=60)
    _execute(app, "INSERT INTO calls (id, company_id, status, created_at) VALUES (%s, %s, 'completed', %s)",
             call, other.company_id, created)
    _retention_run_keeps(app, short, "call", call, other.company_id, created, weakened,
                         "retention-enforced", "retained-call-deleted")


@FIX
def test_retention_from_start(apps, weakened: bool) -> None:
    """An appointment that began an hour before the 365-day cutoff and ended an hour after it stays with the fix;
    it goes without (aged from its start). retention-enforced flags the second (retained-appointment-deleted)."""
    app = apps(*(("retention-from-start",) if weakened else ()))
    tenant = app.tenants[1]
    appointment, ended = str(uuid.uuid4()), datetime.now(timezone.utc) - timedelta(days=365, hours=-1)
    _execute(app, "INSERT INTO appointments (id, company_id, title, starts_at, ends_at, status) "
                  "VALUES (%s, %s, 'across', %s, %s, 'scheduled')",
             appointment, tenant.company_id, ended - timedelta(hours=2), ended)
    _retention_run_keeps(app, tenant, "appointment", appointment, tenant.company_id, ended, weakened,
                         "retention-enforced", "retained-appointment-deleted")


@FIX
def test_retention_batch_full(apps, weakened: bool) -> None:
    """In batches of one row, both of two 100-day-old calls go at a retention run with the fix; one at least
    stays without (the loop stops after its first, full, batch). retention-enforced flags the second (expired kept,
    and the run's counts short of the expired rows: run-left-expired)."""
    app = apps(*(("retention-batch-full",) if weakened else ()), STORMPROOF_RETENTION_BATCH_SIZE="1")
    tenant = app.tenants[1]
    created = datetime.now(timezone.utc) - timedelta(days=100)
    old = [str(uuid.uuid4()) for _ in range(2)]
    for call in old:
        _execute(app, "INSERT INTO calls (id, company_id, status, created_at) VALUES (%s, %s, 'completed', %s)",
                 call, tenant.company_id, created)
    rec = Recorder([t.company_id for t in app.tenants])
    run = httpx.post(f"{app.url}/api/v1/admin/retention/run", headers=auth(tenant.manager_token))
    assert run.status_code == 200, run.text
    rec.record(v.RETENTION_RUN, tenant.company_id, run,
               rows=[{"kind": "call", "id": call, "company_id": tenant.company_id, "at": created.timestamp()}
                     for call in old])
    kept = sql_rows(app.database_url, "SELECT count(*) FROM calls WHERE id = ANY(%s)", old)[0][0]
    assert (kept > 0) is weakened  # the first batch may take a seeded expired call, not one of ours
    # The recorder's wall clock is synthetic: judge at the real time of the run.
    verdict = _verdict("retention-enforced", _at_wall(rec.history(), time.time()), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    # The run's own count shows it too, even where a later run would have cleared what it left.
    assert ("run-left-expired" in {x.details["type"] for x in verdict.violations}) is weakened, verdict


@FIX
def test_retention_schedule_policies(reference_app_module, weakened: bool) -> None:
    """The app's beat runs retention every second, no request asking: a 100-day-old call of a tenant on the
    defaults goes with the fix; it stays without (the schedule visits the companies with a policy row only, and
    only the other tenant has one). retention-enforced flags the second from the task records
    (scheduled-call-kept)."""
    from tests.reference_app.background import wait_for

    app = reference_app_module(("retention-schedule-policies",) if weakened else (), task_workers=1,
                               retention_beat_s=1)
    try:
        with_policy, on_defaults = app.tenants
        _execute(app, "INSERT INTO retention_policies (company_id, call_days, appointment_days, updated_at) "
                      "VALUES (%s, 30, 100, now())", with_policy.company_id)
        old = str(uuid.uuid4())
        _execute(app, "INSERT INTO calls (id, company_id, status, created_at) VALUES (%s, %s, 'completed', %s)",
                 old, on_defaults.company_id, datetime.now(timezone.utc) - timedelta(days=100))
        inserted = time.time()
        runs = ("SELECT count(*) FROM task_records WHERE name = 'lifecycle.enforce_retention' "
                "AND state = 'succeeded' AND (tries->-1->>'at')::float > %s")
        wait_for(lambda: sql_rows(app.database_url, runs, inserted + 0.5)[0][0] > 0, timeout=30,
                 what="a periodic retention run after the insert")
        kept = bool(sql_rows(app.database_url, "SELECT 1 FROM calls WHERE id = %s", old))
        assert kept is weakened
        verdict = _verdict("retention-enforced", Recorder([]).history(), snapshot(app.database_url))
        assert verdict.summary["scheduled_runs_judged"] >= 1, verdict
        assert ({x.details["type"] for x in verdict.violations} == {"scheduled-call-kept"}) is weakened, verdict
        assert verdict.status == ("invalid" if weakened else "valid"), verdict
    finally:
        reference_app_module.stop(app, wait=False)


@FIX
def test_retention_audit(apps, weakened: bool) -> None:
    """A deletion audit row executed 100 days ago survives a retention run with the fix; it goes without.

    deletion-audited flags the second (audit-row-deleted)."""
    app = apps(*(("retention-audit",) if weakened else ()))
    tenant = app.tenants[1]
    audit, executed = str(uuid.uuid4()), datetime.now(timezone.utc) - timedelta(days=100)
    _execute(app, "INSERT INTO deletion_audit (id, company_id, requested_by, confirmed_by, scope, target_id, counts, "
                  "requested_at, executed_at) VALUES (%s, %s, %s, %s, 'appointment', %s, '{}', %s, %s)",
             audit, tenant.company_id, tenant.manager_id, tenant.manager_id, str(uuid.uuid4()), executed, executed)
    _retention_run_keeps(app, tenant, "audit", audit, tenant.company_id, executed, weakened,
                         "deletion-audited", "audit-row-deleted")


def _deletion_requested(app, tenant) -> tuple[str, dict]:
    """A new appointment of ``tenant`` a month ahead and its pending deletion request: (appointment id, the
    request as POST /deletions answered it, confirmation token included)."""
    appointment, ends = str(uuid.uuid4()), datetime.now(timezone.utc) + timedelta(days=30)
    _execute(app, "INSERT INTO appointments (id, company_id, title, starts_at, ends_at, status) "
                  "VALUES (%s, %s, 'x', %s, %s, 'scheduled')", appointment, tenant.company_id,
             ends - timedelta(hours=1), ends)
    created = httpx.post(f"{app.url}/api/v1/deletions", headers=auth(tenant.manager_token),
                         json={"scope": "appointment", "target_id": appointment})
    assert created.status_code == 201, created.text
    return appointment, created.json()


@FIX
def test_deletion_audit(apps, weakened: bool) -> None:
    """A confirmed deletion deletes and writes its audit row with the fix; no audit row without.

    deletion-audited flags the second."""
    app = apps(*(("deletion-audit",) if weakened else ()))
    tenant = app.tenants[0]
    appointment, request = _deletion_requested(app, tenant)
    rec = Recorder([t.company_id for t in app.tenants])
    confirmed = httpx.post(f"{app.url}/api/v1/deletions/{request['id']}/confirm", headers=auth(tenant.manager_token),
                           json={"confirmation_token": request["confirmation_token"]})
    assert confirmed.status_code == 200, confirmed.text
    rec.record(v.DELETION_CONFIRM, tenant.company_id, confirmed, deletion_id=request["id"])
    assert not sql_rows(app.database_url, "SELECT 1 FROM appointments WHERE id = %s", appointment)
    audited = bool(sql_rows(app.database_url, "SELECT 1 FROM deletion_audit WHERE id = %s", request["id"]))
    assert audited is not weakened
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_deletion_reconfirm(apps, weakened: bool) -> None:
    """An executed deletion confirmed again answers 409 deletion-not-pending with the fix; without, it runs again,
    answers 200 and rewrites its audit row. deletion-audited flags the second (deletion-executed-again)."""
    app = apps(*(("deletion-reconfirm",) if weakened else ()))
    tenant = app.tenants[0]
    _, request = _deletion_requested(app, tenant)
    rec = Recorder([t.company_id for t in app.tenants])
    for again in (False, True):
        confirmed = httpx.post(f"{app.url}/api/v1/deletions/{request['id']}/confirm",
                               headers=auth(tenant.manager_token),
                               json={"confirmation_token": request["confirmation_token"]})
        rec.record(v.DELETION_CONFIRM, tenant.company_id, confirmed, deletion_id=request["id"],
                   **({"again": True} if again else {}))
    problem = _problem_type(confirmed) if confirmed.status_code >= 400 else None
    assert (confirmed.status_code, problem) == ((200, None) if weakened else (409, "deletion-not-pending")), \
        confirmed.text
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"deletion-executed-again"}


@FIX
def test_deletion_pending_status(apps, weakened: bool) -> None:
    """A pending request confirmed with its token, in time, runs with the fix (200, the appointment gone); without,
    the pending check refuses it 409 as already executed and the appointment stays. deletion-audited flags it
    (confirm-refused)."""
    app = apps(*(("deletion-pending-status",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment, requested = _requested_deletion(app, tenant, rec, "2031-01-03")
    request = requested.json()
    confirmed = httpx.post(f"{app.url}/api/v1/deletions/{request['id']}/confirm", headers=auth(tenant.manager_token),
                           json={"confirmation_token": request["confirmation_token"]})
    rec.record(v.DELETION_CONFIRM, tenant.company_id, confirmed, deletion_id=request["id"], past_expiry_s=-600.0,
               expired=False)
    left = sql_rows(app.database_url, "SELECT id FROM appointments WHERE id = %s", appointment)
    assert (confirmed.status_code, len(left)) == ((409, 1) if weakened else (200, 0)), confirmed.text
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    assert verdict.summary["first_confirms_judged"] == 1
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"confirm-refused"}


@FIX
def test_deletion_confirm_lock(apps, weakened: bool) -> None:
    """Two confirmations sent at once: with the fix the second waits for the first's lock and answers 409
    deletion-not-pending; without it both find the request pending, both run, and the second fails on the
    audit row (5xx). The race window holds both inside (STORMPROOF_RACE_BARRIER), or 2 s where the lock lets
    one in. deletion-audited flags the second (concurrent-confirm-failed)."""
    app = apps(*(("deletion-confirm-lock",) if weakened else ()), STORMPROOF_RACE_DELAY_MS="2000",
               STORMPROOF_RACE_BARRIER="2")
    tenant = app.tenants[0]
    appointment, request = _deletion_requested(app, tenant)
    path = f"/api/v1/deletions/{request['id']}/confirm"
    body = {"confirmation_token": request["confirmation_token"]}
    answers = asyncio.run(fire_together(app.url, [("POST", path, auth(tenant.manager_token), body)] * 2))
    rec = Recorder([t.company_id for t in app.tenants])
    # The two were in flight together: record both invokes, then both completions.
    rec.record_together(v.DELETION_CONFIRM, tenant.company_id, answers, deletion_id=request["id"], together=True)
    statuses = sorted(answer.status_code for answer in answers)
    if weakened:
        assert statuses[0] == 200 and statuses[1] >= 500, [a.text for a in answers]
    else:
        assert statuses == [200, 409], [a.text for a in answers]
    assert sql_rows(app.database_url, "SELECT count(*) FROM deletion_audit WHERE id = %s", request["id"]) == [(1,)]
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"concurrent-confirm-failed"}


def _at_wall(history, wall: float):
    """The same history with every op's wall clock set to ``wall`` (the builder's is synthetic)."""
    from dataclasses import replace

    from stormproof.harness.history import History

    return History([replace(op, wall=wall) for op in history])


@FIX
def test_deletion_cascade(apps, weakened: bool) -> None:
    """An appointment's deletion takes its calls with the fix; they survive unlinked without.

    deletion-audited flags the second."""
    app = apps(*(("deletion-cascade",) if weakened else ()))
    tenant = app.tenants[1]
    appointment = tenant.appointment_ids[3]
    rec = Recorder([t.company_id for t in app.tenants])
    body = {"appointment_id": appointment}
    call = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json=body)
    assert call.status_code == 202, call.text
    rec.record(v.CALL_SUBMIT, tenant.company_id, call, body=body, appointment_id=appointment)
    created = httpx.post(f"{app.url}/api/v1/deletions", headers=auth(tenant.manager_token),
                         json={"scope": "appointment", "target_id": appointment}).json()
    confirmed = httpx.post(f"{app.url}/api/v1/deletions/{created['id']}/confirm", headers=auth(tenant.manager_token),
                           json={"confirmation_token": created["confirmation_token"]})
    assert confirmed.status_code == 200, confirmed.text
    rec.record(v.DELETION_CONFIRM, tenant.company_id, confirmed, deletion_id=created["id"])
    survived = sql_rows(app.database_url, "SELECT appointment_id FROM calls WHERE id = %s", call.json()["id"])
    assert survived == ([(None,)] if weakened else [])
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_deletion_audit_counts(apps, weakened: bool) -> None:
    """An appointment with two consents and a call, deleted: its audit counts them all with the fix; only the
    appointment without it (deletion-audited: audit-counts-short)."""
    app = apps(*(("deletion-audit-counts",) if weakened else ()))
    tenant = app.tenants[1]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant, ("recording", "analysis"), rec)
    body = {"appointment_id": appointment}
    call = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json=body)
    assert call.status_code == 202, call.text
    rec.record(v.CALL_SUBMIT, tenant.company_id, call, body=body, appointment_id=appointment)
    asked = {"scope": "appointment", "target_id": appointment}
    created = httpx.post(f"{app.url}/api/v1/deletions", headers=auth(tenant.manager_token), json=asked)
    assert created.status_code == 201, created.text
    rec.record(v.DELETION_REQUEST, tenant.company_id, created, body=asked, **asked)
    confirmed = httpx.post(f"{app.url}/api/v1/deletions/{created.json()['id']}/confirm",
                           headers=auth(tenant.manager_token),
                           json={"confirmation_token": created.json()["confirmation_token"]})
    assert confirmed.status_code == 200, confirmed.text
    rec.record(v.DELETION_CONFIRM, tenant.company_id, confirmed, deletion_id=created.json()["id"])
    counts = confirmed.json()["counts"]
    assert (counts.get("consents", 0), counts.get("calls", 0)) == ((0, 0) if weakened else (2, 1)), counts
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"audit-counts-short"}


def _requested_deletion(app, tenant, rec: Recorder, day: str) -> tuple[str, httpx.Response]:
    """A new appointment of ``tenant`` on ``day`` and the deletion request for it (recorded): (its id, the answer)."""
    window = {"title": "to delete", "starts_at": f"{day}T10:00:00Z", "ends_at": f"{day}T10:30:00Z"}
    made = httpx.post(f"{app.url}/api/v1/appointments", headers=auth(tenant.manager_token), json=window)
    assert made.status_code == 201, made.text
    appointment = made.json()["id"]
    body = {"scope": "appointment", "target_id": appointment}
    requested = httpx.post(f"{app.url}/api/v1/deletions", headers=auth(tenant.manager_token), json=body)
    assert requested.status_code == 201, requested.text
    rec.record(v.DELETION_REQUEST, tenant.company_id, requested, body=body, **body)
    return appointment, requested


@FIX
def test_deletion_token(apps, weakened: bool) -> None:
    """A confirmation with a wrong token is refused 422 and deletes nothing with the fix; it deletes without.

    deletion-audited flags the second (a wrong token answered 2xx)."""
    app = apps(*(("deletion-token",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment, requested = _requested_deletion(app, tenant, rec, "2031-01-01")
    deletion = requested.json()["id"]
    wrong = httpx.post(f"{app.url}/api/v1/deletions/{deletion}/confirm", headers=auth(tenant.manager_token),
                       json={"confirmation_token": "not-the-token"})
    rec.record(v.DELETION_CONFIRM, tenant.company_id, wrong, deletion_id=deletion, wrong_token=True)
    left = sql_rows(app.database_url, "SELECT id FROM appointments WHERE id = %s", appointment)
    if weakened:
        assert wrong.status_code == 200 and left == []
    else:
        assert wrong.status_code == 422 and _problem_type(wrong) == "confirmation-token-invalid"
        assert len(left) == 1
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_deletion_token_lookup(apps, weakened: bool) -> None:
    """Request B confirmed with the token of the tenant's pending request A: refused 422 with the fix, both
    appointments kept; without it, A's appointment is deleted on B's confirmation. deletion-audited flags it."""
    app = apps(*(("deletion-token-lookup",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    first, requested_a = _requested_deletion(app, tenant, rec, "2031-01-03")
    second, requested_b = _requested_deletion(app, tenant, rec, "2031-01-04")
    deletion = requested_b.json()["id"]
    wrong = httpx.post(f"{app.url}/api/v1/deletions/{deletion}/confirm", headers=auth(tenant.manager_token),
                       json={"confirmation_token": requested_a.json()["confirmation_token"]})
    rec.record(v.DELETION_CONFIRM, tenant.company_id, wrong, deletion_id=deletion, wrong_token=True,
               other_request_token=True)
    left = {str(row[0]) for row in sql_rows(app.database_url, "SELECT id FROM appointments WHERE id IN (%s, %s)",
                                            first, second)}
    if weakened:
        assert wrong.status_code == 200 and left == {second}
    else:
        assert wrong.status_code == 422 and _problem_type(wrong) == "confirmation-token-invalid"
        assert left == {first, second}
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_start_deleted_appointment(apps, weakened: bool) -> None:
    """A session start held in its race window (2 s, tests only) while the appointment's deletion is confirmed:
    its insert meets the foreign key. 404 with the fix; 500 without (single-active-session: start-errored)."""
    from concurrent.futures import ThreadPoolExecutor

    app = apps(*(("start-deleted-appointment",) if weakened else ()), STORMPROOF_RACE_DELAY_MS="2000")
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant)
    body = {"scope": "appointment", "target_id": appointment}
    requested = httpx.post(f"{app.url}/api/v1/deletions", headers=auth(tenant.manager_token), json=body)
    assert requested.status_code == 201, requested.text
    start = {"appointment_id": appointment}
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = pool.submit(httpx.post, f"{app.url}{START}", headers=auth(tenant.manager_token, new_key()),
                              json=start, timeout=30)
        time.sleep(0.5)  # the start is in its window: read the appointment, not yet inserted
        confirmed = httpx.post(f"{app.url}/api/v1/deletions/{requested.json()['id']}/confirm",
                               headers=auth(tenant.manager_token),
                               json={"confirmation_token": requested.json()["confirmation_token"]})
        answer = started.result()
    assert confirmed.status_code == 200, confirmed.text
    assert answer.status_code == (500 if weakened else 404), answer.text
    rec.record(v.SESSION_START, tenant.company_id, answer, body=start, racing_deletion=requested.json()["id"],
               **start)
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"start-errored"}


@FIX
def test_deletion_expiry(apps, weakened: bool) -> None:
    """A confirmation with the right token after the request expired is refused 409 deletion-not-pending and
    deletes nothing with the fix; it deletes without. deletion-audited flags the second (confirmed-expired)."""
    app = apps(*(("deletion-expiry",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment, requested = _requested_deletion(app, tenant, rec, "2031-01-02")
    deletion = requested.json()["id"]
    # Its life run out (the app's TTL is 15 min; the test ages the request instead of waiting).
    _execute(app, "UPDATE deletion_requests SET expires_at = now() - interval '2 seconds' WHERE id = %s", deletion)
    late = httpx.post(f"{app.url}/api/v1/deletions/{deletion}/confirm", headers=auth(tenant.manager_token),
                      json={"confirmation_token": requested.json()["confirmation_token"]})
    rec.record(v.DELETION_CONFIRM, tenant.company_id, late, deletion_id=deletion, late=True, past_expiry_s=2.0,
               expired=True)
    left = sql_rows(app.database_url, "SELECT id FROM appointments WHERE id = %s", appointment)
    if weakened:
        assert late.status_code == 200 and left == []
    else:
        assert late.status_code == 409 and _problem_type(late) == "deletion-not-pending"
        assert len(left) == 1
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"confirmed-expired"}


@FIX
def test_appointment_delete_direct(apps, weakened: bool) -> None:
    """DELETE /appointments/{id} answers 202 with a deletion request and deletes nothing with the fix; the
    confirmation with its token then deletes it, audited, its call included. Without, the DELETE itself
    deletes (204), unaudited, and leaves the call. deletion-audited flags the second (deleted-unconfirmed)."""
    app = apps(*(("appointment-delete-direct",) if weakened else ()))
    tenant = app.tenants[0]
    appointment = _consented_appointment(app, tenant, ("analysis",))
    rec = Recorder([t.company_id for t in app.tenants])
    body = {"appointment_id": appointment}
    call = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json=body)
    assert call.status_code == 202, call.text
    rec.record(v.CALL_SUBMIT, tenant.company_id, call, body=body, appointment_id=appointment)
    deleted = httpx.delete(f"{app.url}/api/v1/appointments/{appointment}", headers=auth(tenant.manager_token))
    rec.record(v.DELETION_REQUEST, tenant.company_id, deleted, scope="appointment", target_id=appointment,
               route="delete")
    left = sql_rows(app.database_url, "SELECT id FROM appointments WHERE id = %s", appointment)
    if weakened:
        assert deleted.status_code == 204 and left == []
    else:
        assert deleted.status_code == 202 and len(left) == 1, deleted.text
        request = deleted.json()
        assert request["target_id"] == appointment and request["status"] == "pending"
        confirmed = httpx.post(f"{app.url}/api/v1/deletions/{request['id']}/confirm",
                               headers=auth(tenant.manager_token),
                               json={"confirmation_token": request["confirmation_token"]})
        assert confirmed.status_code == 200, confirmed.text
        rec.record(v.DELETION_CONFIRM, tenant.company_id, confirmed, deletion_id=request["id"])
        assert not sql_rows(app.database_url, "SELECT 1 FROM appointments WHERE id = %s", appointment)
        assert sql_rows(app.database_url, "SELECT 1 FROM deletion_audit WHERE id = %s", request["id"])
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"deleted-unconfirmed"}


@FIX
def test_stop_idempotent(apps, weakened: bool) -> None:
    """Stopping a stopped session answers its state with the fix; 409 without it."""
    app = apps(*(("stop-idempotent",) if weakened else ()))
    tenant = app.tenants[1]
    started = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()),
                         json={"appointment_id": tenant.appointment_ids[1]})
    assert started.status_code == 201, started.text
    session = started.json()["id"]
    stop = f"{app.url}/api/v1/recordings/sessions/{session}/stop"
    rec = Recorder([t.company_id for t in app.tenants])
    first = httpx.post(stop, headers=auth(tenant.rep_tokens[0], new_key()))
    second = httpx.post(stop, headers=auth(tenant.rep_tokens[0], new_key()))
    for answer in (first, second):
        rec.record(v.SESSION_STOP, tenant.company_id, answer, body=None, session_id=session)
    assert first.status_code == 200 and first.json()["status"] == "stopped"
    if weakened:
        assert second.status_code == 409
    else:
        assert second.status_code == 200 and second.json() == first.json()
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_conflict_names_active(apps, weakened: bool) -> None:
    """A start refused because a session is active names that session with the fix; a stopped one without it."""
    app = apps(*(("conflict-names-active",) if weakened else ()))
    tenant = app.tenants[1]
    appointment = tenant.appointment_ids[0]  # no other test of this module starts sessions on it
    rec = Recorder([t.company_id for t in app.tenants])
    body = {"appointment_id": appointment}

    def start() -> httpx.Response:
        answer = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()), json=body)
        rec.record(v.SESSION_START, tenant.company_id, answer, body=body, appointment_id=appointment)
        return answer

    first = start()
    assert first.status_code == 201, first.text
    stopped = httpx.post(f"{app.url}/api/v1/recordings/sessions/{first.json()['id']}/stop",
                         headers=auth(tenant.rep_tokens[0], new_key()))
    rec.record(v.SESSION_STOP, tenant.company_id, stopped, session_id=first.json()["id"])
    second = start()
    assert second.status_code == 201, second.text
    refused = start()
    assert refused.status_code == 409 and _problem_type(refused) == "active-session-exists"
    named = refused.json()["active_session_id"]
    assert named == (first.json()["id"] if weakened else second.json()["id"])
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_conflict_names_own_id(apps, weakened: bool) -> None:
    """A start refused because a session is active names that session with the fix; without it, an id that
    was never stored, which single-active-session flags (conflict-misnamed: never existed)."""
    app = apps(*(("conflict-names-own-id",) if weakened else ()))
    tenant = app.tenants[1]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant, rec=rec)
    body = {"appointment_id": appointment}
    answers = []
    for _ in range(2):
        answer = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()), json=body)
        rec.record(v.SESSION_START, tenant.company_id, answer, body=body, appointment_id=appointment)
        answers.append(answer)
    assert answers[0].status_code == 201, answers[0].text
    assert answers[1].status_code == 409 and _problem_type(answers[1]) == "active-session-exists"
    assert (answers[1].json()["active_session_id"] == answers[0].json()["id"]) is not weakened
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [x.details["type"] for x in verdict.violations] == ["conflict-misnamed"]


@FIX
def test_start_answers_active(apps, weakened: bool) -> None:
    """A second start while a session is active is refused 409 naming it with the fix; answered that
    session 201 without it, which single-active-session flags (start-answered-existing)."""
    app = apps(*(("start-answers-active",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant, rec=rec)
    body = {"appointment_id": appointment}
    answers = []
    for token in (tenant.rep_tokens[0], tenant.rep_tokens[1]):
        answer = httpx.post(app.url + START, headers=auth(token, new_key()), json=body)
        rec.record(v.SESSION_START, tenant.company_id, answer, body=body, appointment_id=appointment)
        answers.append(answer)
    first, second = answers
    assert first.status_code == 201, first.text
    if weakened:
        assert second.status_code == 201 and second.json()["id"] == first.json()["id"], second.text
    else:
        assert second.status_code == 409 and second.json()["active_session_id"] == first.json()["id"], second.text
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [x.details["type"] for x in verdict.violations] == ["start-answered-existing"]


@FIX
def test_legacy_start_lock(apps, weakened: bool) -> None:
    """With the unique index dropped, a legacy start and a new-route start at once leave one active session
    with the fix (both routes take the lock); two without it. The race window holds until both are in it
    (STORMPROOF_RACE_BARRIER), or 2 s where the lock lets only one in: the duplicate is certain, not likely."""
    weakenings = ("legacy-start-lock", "session-unique-index") if weakened else ("session-unique-index",)
    app = apps(*weakenings, STORMPROOF_RACE_DELAY_MS="2000", STORMPROOF_RACE_BARRIER="2")
    tenant = app.tenants[0]
    appointment = tenant.appointment_ids[1]
    body = {"appointment_id": appointment}
    routes = ((v.LEGACY_START, "/api/v1/recordings/start"), (v.SESSION_START, START))
    answers = asyncio.run(fire_together(app.url, [("POST", path, auth(tenant.rep_tokens[0], new_key()), body)
                                                  for _, path in routes]))
    rec = Recorder([t.company_id for t in app.tenants])
    for (f, _), answer in zip(routes, answers):
        rec.record(f, tenant.company_id, answer, body=body, appointment_id=appointment)
    active = sql_rows(app.database_url, "SELECT count(*) FROM recording_sessions WHERE appointment_id = %s "
                      "AND status IN ('pending', 'recording')", appointment)[0][0]
    assert active == (2 if weakened else 1), [a.text for a in answers]
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_session_index_unhandled(apps, weakened: bool) -> None:
    """With the lock out of play, two starts at once both pass the check and meet the partial unique index: the
    one it refuses answers 409 active-session-exists with the fix, 500 without (single-active-session:
    start-errored). The race window holds until both are in it (STORMPROOF_RACE_BARRIER)."""
    weakenings = ("session-lock", "session-index-unhandled") if weakened else ("session-lock",)
    app = apps(*weakenings, STORMPROOF_RACE_DELAY_MS="2000", STORMPROOF_RACE_BARRIER="2")
    tenant = app.tenants[0]
    appointment = tenant.appointment_ids[2]
    body = {"appointment_id": appointment}
    answers = asyncio.run(fire_together(app.url, [("POST", START, auth(tenant.rep_tokens[0], new_key()), body)
                                                  for _ in range(2)]))
    rec = Recorder([t.company_id for t in app.tenants])
    for answer in answers:
        rec.record(v.SESSION_START, tenant.company_id, answer, body=body, appointment_id=appointment)
    assert sorted(a.status_code for a in answers) == ([201, 500] if weakened else [201, 409]), \
        [a.text for a in answers]
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"start-errored"}


@FIX
def test_reassign_idempotent(apps, weakened: bool) -> None:
    """Assigning the current rep again answers the existing assignment with the fix; 409 without it."""
    app = apps(*(("reassign-idempotent",) if weakened else ()))
    tenant = app.tenants[1]
    assign = f"{app.url}/api/v1/appointments/{tenant.appointment_ids[2]}/assign"
    body = {"rep_id": tenant.rep_ids[0]}
    rec = Recorder([t.company_id for t in app.tenants])
    first = httpx.post(assign, headers=auth(tenant.manager_token, new_key()), json=body)
    second = httpx.post(assign, headers=auth(tenant.manager_token, new_key()), json=body)
    for answer in (first, second):
        rec.record(v.ASSIGN, tenant.company_id, answer, body=body, appointment_id=tenant.appointment_ids[2],
                   rep_id=tenant.rep_ids[0])
    assert first.status_code == 200, first.text
    if weakened:
        assert second.status_code == 409 and _problem_type(second) == "appointment-already-assigned"
    else:
        assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    verdict = _verdict("single-assignment", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_rep_overlap_released(apps, weakened: bool) -> None:
    """A rep unassigned from one appointment may take an overlapping one with the fix; refused 409
    rep-double-booked without it. single-assignment flags the second (double-booked-unexplained)."""
    app = apps(*(("rep-overlap-released",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    made = []
    for hour in (9, 10):  # 9:00-11:00 and 10:00-12:00 overlap
        window = {"title": f"overlap {hour}", "starts_at": f"2032-03-01T{hour:02d}:00:00Z",
                  "ends_at": f"2032-03-01T{hour + 2:02d}:00:00Z"}
        answer = httpx.post(f"{app.url}/api/v1/appointments", headers=auth(tenant.manager_token), json=window)
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    body = {"rep_id": tenant.rep_ids[1]}
    steps = (("assign", made[0]), ("unassign", made[0]), ("assign", made[1]))
    answers = []
    for what, appointment in steps:
        answer = httpx.post(f"{app.url}/api/v1/appointments/{appointment}/{what}",
                            headers=auth(tenant.manager_token, new_key()), json=body if what == "assign" else None)
        args = {"appointment_id": appointment, **({"rep_id": body["rep_id"]} if what == "assign" else {})}
        rec.record(v.ASSIGN if what == "assign" else v.UNASSIGN, tenant.company_id, answer,
                   body=body if what == "assign" else None, **args)
        answers.append(answer)
    assert answers[0].status_code == 200 and answers[1].status_code == 200, [a.text for a in answers]
    if weakened:
        assert answers[2].status_code == 409 and _problem_type(answers[2]) == "rep-double-booked"
    else:
        assert answers[2].status_code == 200, answers[2].text
    verdict = _verdict("single-assignment", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"double-booked-unexplained"}


@FIX
def test_stop_finds_active_only(apps, weakened: bool) -> None:
    """A second stop of a session answers its state with the fix; 404 without it, which
    single-active-session flags (stop-refused: the session existed all along)."""
    app = apps(*(("stop-finds-active-only",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant)
    body = {"appointment_id": appointment}
    started = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()), json=body)
    rec.record(v.SESSION_START, tenant.company_id, started, body=body, appointment_id=appointment)
    assert started.status_code == 201, started.text
    session = started.json()["id"]
    stops = []
    for _ in range(2):
        stop = httpx.post(f"{app.url}/api/v1/recordings/sessions/{session}/stop",
                          headers=auth(tenant.rep_tokens[0], new_key()))
        rec.record(v.SESSION_STOP, tenant.company_id, stop, session_id=session)
        stops.append(stop.status_code)
    assert stops == ([200, 404] if weakened else [200, 200]), stops
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [x.details["type"] for x in verdict.violations] == ["stop-refused"]


@FIX
@pytest.mark.parametrize("weakening, refused", [("session-owner-scope", 404), ("stop-starter-only", 403)])
def test_session_owner_scope(apps, weakened: bool, weakening: str, refused: int) -> None:
    """A session a rep started is stopped by the tenant's manager and by another rep with the fix; without it
    both stops answer 404 (the session looked up among the caller's own) or 403 (a starter-only permission
    check); single-active-session flags stop-refused: the session existed all along, and any user may stop it."""
    app = apps(*((weakening,) if weakened else ()))
    tenant = app.tenants[0]
    assert len(tenant.rep_tokens) >= 2
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant)
    body = {"appointment_id": appointment}
    started = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()), json=body)
    rec.record(v.SESSION_START, tenant.company_id, started, body=body, appointment_id=appointment, as_user="rep:0")
    assert started.status_code == 201, started.text
    session = started.json()["id"]
    stops = []
    for token, who in ((tenant.manager_token, {}), (tenant.rep_tokens[1], {"as_user": "rep:1"})):
        stop = httpx.post(f"{app.url}/api/v1/recordings/sessions/{session}/stop", headers=auth(token, new_key()))
        rec.record(v.SESSION_STOP, tenant.company_id, stop, session_id=session, **who)
        stops.append(stop.status_code)
    assert stops == ([refused, refused] if weakened else [200, 200]), stops
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [x.details["type"] for x in verdict.violations] == ["stop-refused", "stop-refused"]



@FIX
def test_stop_answers_stale(apps, weakened: bool) -> None:
    """A 200 stop answers the session as stopped with the fix; without it, the row as loaded before the stop
    (single-active-session flags stop-answered-active), though the row itself is stopped."""
    app = apps(*(("stop-answers-stale",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant)
    body = {"appointment_id": appointment}
    started = httpx.post(app.url + START, headers=auth(tenant.manager_token, new_key()), json=body)
    rec.record(v.SESSION_START, tenant.company_id, started, body=body, appointment_id=appointment)
    assert started.status_code == 201, started.text
    session = started.json()["id"]
    stop = httpx.post(f"{app.url}/api/v1/recordings/sessions/{session}/stop",
                      headers=auth(tenant.manager_token, new_key()))
    rec.record(v.SESSION_STOP, tenant.company_id, stop, session_id=session)
    assert stop.status_code == 200, stop.text
    assert stop.json()["status"] == ("recording" if weakened else "stopped")
    verdict = _verdict("single-active-session", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [x.details["type"] for x in verdict.violations] == ["stop-answered-active"]

def _unassign_unheld(app, day: str):
    """A new appointment of the second tenant, never assigned, unassigned once: (tenant, recorder, answer)."""
    tenant = app.tenants[1]
    window = {"title": "never assigned", "starts_at": f"{day}T09:00:00Z", "ends_at": f"{day}T10:00:00Z"}
    made = httpx.post(f"{app.url}/api/v1/appointments", headers=auth(tenant.manager_token), json=window)
    assert made.status_code == 201, made.text
    appointment = made.json()["id"]
    rec = Recorder([t.company_id for t in app.tenants])
    answer = httpx.post(f"{app.url}/api/v1/appointments/{appointment}/unassign",
                        headers=auth(tenant.manager_token, new_key()))
    rec.record(v.UNASSIGN, tenant.company_id, answer, appointment_id=appointment)
    return tenant, rec, answer


@FIX
def test_unassign_idempotent(apps, weakened: bool) -> None:
    """Unassigning an appointment nobody holds answers 200 with the fix; 500 without it, which
    server-errors-explained flags (no fault was in place)."""
    tenant, rec, answer = _unassign_unheld(apps(*(("unassign-idempotent",) if weakened else ())), "2032-04-01")
    if weakened:
        assert answer.status_code == 500, answer.text
    else:
        assert answer.status_code == 200 and answer.json()["assigned_rep_id"] is None, answer.text
    verdict = _verdict("server-errors-explained", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert verdict.violations[0].details == {"type": "unexplained-server-error", "tenant": tenant.company_id,
                                                 "f": v.UNASSIGN, "status": 500}


@FIX
def test_unassign_refuses_unassigned(apps, weakened: bool) -> None:
    """Unassigning an appointment nobody holds answers 200 with the fix; 409 conflict ("not assigned") without
    it, a refusal the unassign's contract does not have (refusals-explained flags it)."""
    tenant, rec, answer = _unassign_unheld(apps(*(("unassign-refuses-unassigned",) if weakened else ())),
                                           "2032-04-02")
    assert answer.status_code == (409 if weakened else 200), answer.text
    verdict = _verdict("refusals-explained", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    assert verdict.summary["refusals"] == (1 if weakened else 0)
    if weakened:
        assert verdict.violations[0].details == {"type": "refusal-outside-contract", "tenant": tenant.company_id,
                                                 "f": v.UNASSIGN, "status": 409, "problem": "conflict"}


@FIX
def test_list_empty_404(apps, weakened: bool) -> None:
    """A page past the end of the tenant's appointments is 200 and empty with the fix; 404 not-found without it,
    a refusal a list never has (refusals-explained flags it)."""
    app = apps(*(("list-empty-404",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    answer = httpx.get(f"{app.url}/api/v1/appointments?limit=50&offset=1000000", headers=auth(tenant.manager_token))
    assert (answer.status_code, answer.json() if answer.status_code == 200 else None) == (
        (404, None) if weakened else (200, [])), answer.text
    first = httpx.get(f"{app.url}/api/v1/appointments?limit=50", headers=auth(tenant.manager_token))
    assert first.status_code == 200 and first.json(), first.text  # a page with rows is answered either way
    rec.record(v.APPOINTMENT_LIST, tenant.company_id, answer, offset=1000000)
    rec.record(v.APPOINTMENT_LIST, tenant.company_id, first)
    verdict = _verdict("refusals-explained", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [(x.details["f"], x.details["status"]) for x in verdict.violations] == [(v.APPOINTMENT_LIST, 404)]


@FIX
def test_webhook_signature(apps, weakened: bool) -> None:
    """An unsigned delivery is refused 401 with the fix; processed (here: 404 unknown job) without it."""
    app = apps(*(("webhook-signature",) if weakened else ()))
    delivery = {"event": "job.completed", "delivery_id": "dlv_x", "job_id": f"shj_{uuid.uuid4().hex}",
                "company_id": app.tenants[0].company_id, "call_id": str(uuid.uuid4()), "status": "completed",
                "result": {}, "output_hash": "h", "error": None}
    answer = httpx.post(f"{app.url}/api/v1/shunya/webhook", json=delivery)
    assert answer.status_code == (404 if weakened else 401), answer.text


def _one_delivery(apps, weakening: str, weakened: bool, recorded: dict, **delivery):
    """One delivery of a pending job, built by ``job_delivery(**delivery)`` and recorded with the args
    ``recorded``: its answer and job-applied-once's verdict on it."""
    from stormproof.harness.shunya.forged import job_delivery

    app = apps(*((weakening,) if weakened else ()))
    tenant = app.tenants[0]
    call, shunya_job = _pending_job(app, tenant)
    sent = job_delivery(shunya_job, call, tenant.company_id, app.webhook_secret, **delivery)
    answer = httpx.post(f"{app.url}/api/v1/shunya/webhook", content=sent.raw,
                        headers={**sent.headers, "Content-Type": "application/json"})
    rec = Recorder([t.company_id for t in app.tenants])
    rec.record(v.WEBHOOK_DELIVER, tenant.company_id, answer, job_id=shunya_job, call_id=call,
               payload_fp=sent.payload_fp, **recorded)
    return answer, _verdict("job-applied-once", rec.history(), snapshot(app.database_url))


def _timestamp_forgery(apps, weakening: str, weakened: bool, bad: str):
    """A delivery signed with Shunya's secret but with a ``bad`` timestamp, a forged result inside."""
    return _one_delivery(apps, weakening, weakened, {"bad_signature": bad}, bad=bad, forger="fix-test")


@FIX
def test_webhook_window_past_only(apps, weakened: bool) -> None:
    """A delivery dated an hour ahead, signed with the secret: refused 401 with the fix; applied without it, the
    window checked one way (job-applied-once: forged-delivery-accepted, forged-result-applied)."""
    answer, verdict = _timestamp_forgery(apps, "webhook-window-past-only", weakened, "future")
    assert answer.status_code == (200 if weakened else 401), answer.text
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"forged-delivery-accepted", "forged-result-applied"}


@FIX
def test_webhook_window_tight(apps, weakened: bool) -> None:
    """Shunya's delivery signed two minutes before it arrives (within the 300 s tolerance): applied with the fix;
    refused 401 without it, the window a hard-coded minute (job-applied-once: signed-delivery-refused)."""
    from stormproof.harness.shunya.forged import DELAYED_S

    answer, verdict = _one_delivery(apps, "webhook-window-tight", weakened, {"delayed_s": DELAYED_S},
                                    age_s=DELAYED_S)
    assert answer.status_code == (401 if weakened else 200), answer.text
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_webhook_timestamp_unguarded(apps, weakened: bool) -> None:
    """Both malformed timestamps (nan, yesterday), signed over as sent: refused 401 with the fix; a 500 without
    it (job-applied-once: forged-delivery-wrong-status)."""
    from stormproof.harness.shunya.forged import MALFORMED_TIMESTAMPS

    seen = set()
    for _ in range(40):  # the job's id picks which one: until both were sent
        answer, verdict = _timestamp_forgery(apps, "webhook-timestamp-unguarded", weakened, "malformed")
        seen.add(answer.request.headers["X-Shunya-Timestamp"])
        assert answer.status_code == (500 if weakened else 401), answer.text
        assert verdict.status == ("invalid" if weakened else "valid"), verdict
        if seen == set(MALFORMED_TIMESTAMPS):
            break
    assert seen == set(MALFORMED_TIMESTAMPS)


@FIX
def test_job_match_by_call(apps, weakened: bool) -> None:
    """A signed delivery of another job of a call is refused 404 with the fix; applied as the call's result without.

    job-applied-once flags the second."""
    from tests.reference_app.background import delivery

    app = apps(*(("job-match-by-call",) if weakened else ()))
    tenant = app.tenants[0]
    submitted = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
    assert submitted.status_code == 202, submitted.text
    call = submitted.json()
    superseded = f"shj_superseded_{uuid.uuid4().hex[:16]}"
    raw, headers = delivery(superseded, {"id": call["id"], "company_id": tenant.company_id}, secret=app.webhook_secret)
    answer = httpx.post(f"{app.url}/api/v1/shunya/webhook", content=raw, headers=headers)
    rec = Recorder([t.company_id for t in app.tenants])
    rec.record(v.CALL_SUBMIT, tenant.company_id, submitted, body={})
    rec.record(v.WEBHOOK_DELIVER, None, answer, job_id=superseded, call_id=call["id"], superseded=True)
    applied = sql_rows(app.database_url, "SELECT shunya_job_id FROM call_analyses WHERE call_id = %s", call["id"])
    if weakened:
        assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
        assert applied == [(superseded,)]
    else:
        assert answer.status_code == 404, answer.text
        assert applied == []
    verdict = _verdict("job-applied-once", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


def _dead_letter(app, tenant) -> str:
    """A new dead letter of ``tenant`` (no route makes one), status dead: its id."""
    letter = str(uuid.uuid4())
    _execute(app, "INSERT INTO dead_letters (id, company_id, task_id, task_name, args, error, attempts, status, "
                  "created_at) VALUES (%s, %s, %s, 'shunya.poll_shunya_job_status', %s, 'boom', 6, 'dead', now())",
             letter, tenant.company_id, uuid.uuid4().hex, '{"job_row_id": "%s"}' % uuid.uuid4())
    return letter


@FIX
def test_dead_letter_retry_once(apps, weakened: bool) -> None:
    """A dead letter is retried once (then 409) with the fix; every retry queues the task again without it."""
    app = apps(*(("dead-letter-retry-once",) if weakened else ()))
    tenant = app.tenants[0]
    letter = _dead_letter(app, tenant)
    retry = f"{app.url}/api/v1/dead-letters/{letter}/retry"
    rec = Recorder([t.company_id for t in app.tenants])
    answers = []
    for _ in range(2):
        answer = httpx.post(retry, headers=auth(tenant.manager_token))
        rec.record(v.DEAD_LETTER_RETRY, tenant.company_id, answer, dead_letter_id=letter)
        answers.append(answer.status_code)
    assert answers == ([200, 200] if weakened else [200, 409])
    # dead-letter-accounting's manual-retry rules (the rest of its verdict depends on the module's other tasks).
    verdict = _verdict("dead-letter-accounting", rec.history(), snapshot(app.database_url))
    flagged = {x.details["type"] for x in verdict.violations if x.details["type"].startswith("dead-letter-retr")}
    assert flagged == ({"dead-letter-retried-twice"} if weakened else set()), verdict


@FIX
def test_dead_letter_retry_failures(apps, weakened: bool) -> None:
    """A letter whose args carry its failure count: the retried task starts afresh with the fix (no count in
    its args); with the count carried over without, it is dead-lettered at its first failure."""
    app = apps(*(("dead-letter-retry-failures",) if weakened else ()))
    tenant = app.tenants[0]
    letter = _dead_letter(app, tenant)
    _execute(app, "UPDATE dead_letters SET args = %s WHERE id = %s",
             '{"job_row_id": "%s", "failures": 6, "polls": 3}' % uuid.uuid4(), letter)
    answer = httpx.post(f"{app.url}/api/v1/dead-letters/{letter}/retry", headers=auth(tenant.manager_token))
    assert answer.status_code == 200, answer.text
    args = sql_rows(app.database_url, "SELECT args FROM task_records WHERE task_id = %s",
                    answer.json()["retried_task_id"])[0][0]
    assert ("failures" in args and "polls" in args) is weakened, args


@FIX
def test_dead_letter_retry_lock(apps, weakened: bool) -> None:
    """Two retries of one dead letter at once: one queues the task and the other answers 409 with the fix (the
    letter is read locked); both queue it without. The race window holds until both are in it, or 2 s where
    the lock lets only one in: the double retry is certain, not likely. dead-letter-accounting flags it."""
    app = apps(*(("dead-letter-retry-lock",) if weakened else ()), STORMPROOF_RACE_DELAY_MS="2000",
               STORMPROOF_RACE_BARRIER="2")
    tenant = app.tenants[0]
    letter = _dead_letter(app, tenant)
    path = f"/api/v1/dead-letters/{letter}/retry"
    answers = asyncio.run(fire_together(app.url, [("POST", path, auth(tenant.manager_token), None)] * 2))
    rec = Recorder([t.company_id for t in app.tenants])
    for step, answer in enumerate(answers, 1):
        rec.record(v.DEAD_LETTER_RETRY, tenant.company_id, answer, dead_letter_id=letter, step=step, together=True)
    assert sorted(a.status_code for a in answers) == ([200, 200] if weakened else [200, 409])
    verdict = _verdict("dead-letter-accounting", rec.history(), snapshot(app.database_url))
    flagged = {x.details["type"] for x in verdict.violations if x.details["type"].startswith("dead-letter-retr")}
    assert flagged == ({"dead-letter-retried-twice"} if weakened else set()), verdict


@FIX
def test_idempotency_key_format(apps, weakened: bool) -> None:
    """A malformed key answers 400 with the fix; it is used without it."""
    app = apps(*(("idempotency-key-format",) if weakened else ()))
    tenant = app.tenants[0]
    answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, "not a valid key"), json={})
    if weakened:
        assert answer.status_code == 202, answer.text
    else:
        assert answer.status_code == 400 and _problem_type(answer) == "idempotency-key-invalid"


@FIX
def test_retry_budget(weakened: bool) -> None:
    """A task is dead-lettered once its retries are spent with the fix; retried forever without it."""
    from stormproof.reference_app.worker.tasks import out_of_retries

    settings = Settings(database_url="postgresql://x", redis_url="redis://x", task_max_retries=5,
                        weakenings=frozenset({"retry-budget"}) if weakened else frozenset())
    assert not out_of_retries(settings, 5)
    assert out_of_retries(settings, 6) is not weakened
    assert out_of_retries(settings, 10_000) is not weakened


@FIX
def test_throttle_retried(weakened: bool) -> None:
    """A rate limit's refusal (the tenant's Shunya or task limit, or Shunya's 429) is transient with the fix: the
    task waits for its allowance and is retried; without it the task is dead-lettered at its first throttle.
    (shunya-quota: 73 tasks dead-lettered after one try, which dead-letter-accounting flags as gave-up-early.)"""
    from stormproof.reference_app.services.shunya_client import ShunyaRateLimited, ShunyaUnavailable
    from stormproof.reference_app.services.task_queue import TaskRateLimited
    from stormproof.reference_app.worker.tasks import _is_transient

    settings = Settings(database_url="postgresql://x", redis_url="redis://x",
                        weakenings=frozenset({"throttle-retried"}) if weakened else frozenset())
    assert _is_transient(ShunyaRateLimited(1), settings) is not weakened
    assert _is_transient(TaskRateLimited(2), settings) is not weakened
    assert _is_transient(ShunyaUnavailable("create_job: HTTP 503"), settings)  # an outage either way


@FIX
def test_metrics_from_start_up(apps, weakened: bool) -> None:
    """Every series an alert rule reads is in the first scrape with the fix; without it the dedupe counters
    appear only at the first delivery, and metrics-agree's start-up rule flags the misses counter."""
    from stormproof.harness.invariants.checkers._alert_series import check_alert_series
    from stormproof.harness.invariants.collector import ViolationLog
    from stormproof.harness.invariants.metrics import parse_metrics
    from tests.reference_app.background import delivery

    app = apps(*(("metrics-from-start-up",) if weakened else ()), STORMPROOF_POLL_INTERVAL_MS="60000")
    tenant = app.tenants[1]
    start = parse_metrics(httpx.get(f"{app.url}/metrics").text)
    call, shunya_job = _pending_job(app, tenant)
    body, headers = delivery(shunya_job, {"id": call, "company_id": tenant.company_id}, secret=app.webhook_secret)
    assert httpx.post(f"{app.url}/api/v1/shunya/webhook", content=body, headers=headers).status_code == 200
    end = parse_metrics(httpx.get(f"{app.url}/metrics").text)
    from stormproof.harness.invariants import CheckConfig

    log = ViolationLog("metrics-agree", "safety", CheckConfig())
    counts = check_alert_series(log, start, end)
    absent = {v.details["series"] for v in log.verdict().violations}
    assert counts["judged"] >= 8, counts
    if weakened:
        assert "webhook_dedupe_misses_total" in absent, absent
    else:
        assert absent == set(), absent


@FIX
def test_dedupe_metrics(apps, weakened: bool) -> None:
    """A duplicate delivery counts as a dedupe hit with the fix; as a miss without it (misses then exceed analyses)."""
    from tests.reference_app.background import analyses, delivery, metric

    app = apps(*(("dedupe-metrics",) if weakened else ()))
    tenant = app.tenants[0]
    call, shunya_job = _pending_job(app, tenant)
    before = (metric(app, "webhook_dedupe_misses_total"), metric(app, "webhook_dedupe_hits_total"))
    for _ in range(3):
        body, headers = delivery(shunya_job, {"id": call, "company_id": tenant.company_id},
                                 secret=app.webhook_secret)
        answer = httpx.post(f"{app.url}/api/v1/shunya/webhook", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
    assert analyses(app, shunya_job) == 1
    misses = metric(app, "webhook_dedupe_misses_total") - before[0]
    hits = metric(app, "webhook_dedupe_hits_total") - before[1]
    assert (misses, hits) == ((3, 0) if weakened else (1, 2))


@FIX
def test_dedupe_hit_source(reference_app_module, weakened: bool) -> None:
    """A poll that finds its job applied by the webhook meanwhile (the stub delivers the webhook before it answers
    the poll) is a hit of source poll with the fix; of source webhook without it, so the webhook's hits and misses
    exceed the deliveries that reached the app (metrics-agree: dedupe-source)."""
    from stormproof.harness.invariants.metrics import metric_sum
    from tests.reference_app.background import ledger_settled, wait_for

    app = reference_app_module(("dedupe-hit-source",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0", "STORMPROOF_POLL_INTERVAL_MS": "100"},
                               shunya={"complete_after_ms": 0, "webhook_delay_ms": 600_000,
                                       "webhook_on_poll_rate": 1.0})
    tenant = app.tenants[0]
    baseline = httpx.get(f"{app.url}/metrics").text
    answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
    assert answer.status_code == 202, answer.text
    wait_for(lambda: ledger_settled(app) and sql_rows(app.database_url, "SELECT count(*) FROM call_analyses")[0][0],
             timeout=30, what="the poll to apply the job")
    stats = httpx.get(f"{app.shunya_url}/admin/stats").json()
    assert stats["deliveries_attempted"] == 1  # the one the poll set off, before its answer
    snap = replace_metrics(snapshot(app.database_url), httpx.get(f"{app.url}/metrics").text, baseline,
                           upstream_stats=stats)
    hits = {source: metric_sum(snap.metrics, "webhook_dedupe_hits_total", source=source) -
            (metric_sum(snap.baseline, "webhook_dedupe_hits_total", source=source) or 0.0)
            for source in ("webhook", "poll")}
    assert hits == ({"webhook": 1.0, "poll": 0.0} if weakened else {"webhook": 0.0, "poll": 1.0})
    verdict = _verdict("metrics-agree", Recorder([]).history(), snap)
    assert ("dedupe-source" in {x.details["type"] for x in verdict.violations}) is weakened, verdict.violations


@FIX
def test_webhook_raw_body(apps, weakened: bool) -> None:
    """A delivery signed with the secret, its JSON laid out with indentation: applied (200) with the fix; refused
    401 without it, as the app checks its own compact rendering (job-applied-once: signed-delivery-refused)."""
    answer, verdict = _one_delivery(apps, "webhook-raw-body", weakened, {"spaced": True}, spaced=True)
    assert answer.status_code == (401 if weakened else 200), answer.text
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_webhook_complete_result(apps, weakened: bool) -> None:
    """Two signed deliveries saying completed, one without its result and one without its hash: refused 422 with
    the fix, nothing applied; applied without it (job-applied-once: incomplete-delivery-applied, and the empty
    analysis or the one under no hash, incomplete-result-applied)."""
    from stormproof.harness.shunya.forged import INCOMPLETE, job_delivery

    app = apps(*(("webhook-complete-result",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    for missing in INCOMPLETE:
        call, shunya_job = _pending_job(app, tenant)
        sent = job_delivery(shunya_job, call, tenant.company_id, app.webhook_secret, incomplete=missing)
        answer = httpx.post(f"{app.url}/api/v1/shunya/webhook", content=sent.raw,
                            headers={**sent.headers, "Content-Type": "application/json"})
        rec.record(v.WEBHOOK_DELIVER, tenant.company_id, answer, job_id=shunya_job, call_id=call,
                   payload_fp=sent.payload_fp, incomplete=missing)
        applied = sql_rows(app.database_url, "SELECT output_hash FROM call_analyses WHERE call_id = %s", call)
        if weakened:
            assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
            assert len(applied) == 1
        else:
            assert answer.status_code == 422, answer.text
            assert applied == []
    verdict = _verdict("job-applied-once", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        kinds = {violation.details["type"] for violation in verdict.violations}
        assert {"incomplete-delivery-applied", "incomplete-result-applied"} <= kinds, kinds


@FIX
def test_call_read_count_scoped(apps, weakened: bool) -> None:
    """One call's job applied, another call of the tenant read: it counts 0 analyses with the fix; without it,
    every analysis the database holds (job-applied-once: call-read-overcounts)."""
    from stormproof.harness.shunya.forged import job_delivery

    app = apps(*(("call-read-count-scoped",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    applied_call, shunya_job = _pending_job(app, tenant)
    sent = job_delivery(shunya_job, applied_call, tenant.company_id, app.webhook_secret)
    answer = httpx.post(f"{app.url}/api/v1/shunya/webhook", content=sent.raw,
                        headers={**sent.headers, "Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
    rec.record(v.WEBHOOK_DELIVER, tenant.company_id, answer, job_id=shunya_job, call_id=applied_call,
               payload_fp=sent.payload_fp)
    other, _ = _pending_job(app, tenant)
    read = httpx.get(f"{app.url}/api/v1/calls/{other}", headers=auth(tenant.manager_token))
    assert read.status_code == 200, read.text
    assert (read.json()["analyses"] >= 1) if weakened else (read.json()["analyses"] == 0), read.text
    rec.record(v.CALL_READ, tenant.company_id, read, call_id=other)
    verdict = _verdict("job-applied-once", rec.history(), snapshot(app.database_url))
    assert verdict.summary["call_read_counts_judged"] == 1, verdict.summary
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"call-read-overcounts"}


# -- E2 counters ---------------------------------------------------------------------------------
def _metrics_agree(app, baseline: str, history):
    """metrics-agree over the app's real counters (since ``baseline``) and its final state."""
    snap = replace_metrics(snapshot(app.database_url), httpx.get(f"{app.url}/metrics").text, baseline)
    return _verdict("metrics-agree", history, snap)


@FIX
def test_replay_metrics(apps, weakened: bool) -> None:
    """A replayed answer is counted as a replay with the fix; as new without it (metrics-agree flags the gap)."""
    app = apps(*(("replay-metrics",) if weakened else ()))
    tenant = app.tenants[1]
    rec = Recorder([t.company_id for t in app.tenants])
    baseline = httpx.get(f"{app.url}/metrics").text
    key = new_key()
    for _ in range(2):  # a call submission is accepted whatever other tests left behind in this app
        answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, key), json={})
        rec.record(v.CALL_SUBMIT, tenant.company_id, answer, body={})
    assert answer.status_code == 202 and answer.headers.get("Idempotent-Replayed") == "true", answer.text
    verdict = _metrics_agree(app, baseline, rec.history())
    assert verdict.summary["compared"]["idempotency_replays"] == {"metric": 0.0 if weakened else 1.0, "observed": 1}
    assert ("replays" in {x.details["type"] for x in verdict.violations}) is weakened


@FIX
def test_session_metrics(apps, weakened: bool) -> None:
    """recording_sessions_started_total counts sessions created with the fix; refused starts too without it."""
    from tests.reference_app.background import metric

    app = apps(*(("session-metrics",) if weakened else ()))
    tenant = app.tenants[1]
    before = metric(app, "recording_sessions_started_total")
    answers = [httpx.post(app.url + START, headers=auth(tenant.rep_tokens[2], new_key()),
                          json={"appointment_id": tenant.appointment_ids[1]}) for _ in range(2)]
    statuses = [answer.status_code for answer in answers]
    counted = metric(app, "recording_sessions_started_total") - before
    # Leave the appointment as found: the fixed app is shared with test_stop_idempotent, which starts a
    # session on it, and xdist may run that test after this one on the same worker (it failed once: 409).
    for answer in answers:
        if answer.status_code == 201:
            httpx.post(f"{app.url}/api/v1/recordings/sessions/{answer.json()['id']}/stop",
                       headers=auth(tenant.rep_tokens[2], new_key()))
    assert 409 in statuses, statuses  # the second start at least finds the first one active
    assert counted == (2 if weakened else statuses.count(201))


def _failing_shunya(reference_app_module, weakenings: tuple[str, ...]):
    """An app whose Shunya fails half its API calls and every job, after three calls settled:
    (the app, the metrics before, the stub's stats after)."""
    return _settled_with_shunya(reference_app_module, weakenings, calls=3, max_retries=8,
                                shunya={"error_rate": 0.5, "fail_rate": 1.0, "complete_after_ms": 50, "seed": 3})


def _settled_with_shunya(reference_app_module, weakenings: tuple[str, ...], *, calls: int, max_retries: int,
                         shunya: dict):
    """An app whose Shunya stub runs with ``shunya`` (no webhooks), after ``calls`` submissions of its first
    tenant settled: (the app, the metrics before, the stub's stats after)."""
    from tests.reference_app.background import ledger_settled, wait_for

    app = reference_app_module(weakenings, task_workers=1,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0", "STORMPROOF_POLL_INTERVAL_MS": "100",
                                    "STORMPROOF_TASK_BACKOFF_BASE_MS": "20", "STORMPROOF_TASK_BACKOFF_CAP_MS": "50",
                                    "STORMPROOF_TASK_MAX_RETRIES": str(max_retries)},
                               shunya={"webhook_enabled": False, **shunya})
    tenant = app.tenants[0]
    baseline = httpx.get(f"{app.url}/metrics").text
    for _ in range(calls):
        answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
        assert answer.status_code == 202, answer.text
    wait_for(lambda: ledger_settled(app), timeout=60, what="every task to settle")
    return app, baseline, httpx.get(f"{app.shunya_url}/admin/stats").json()


def _unhandled_error(weakening: str, weakened: bool, trace: str) -> tuple[httpx.Response, list[dict]]:
    """Ask an in-process app (its fixes on, or ``weakening`` off) a route that raises an error no handler maps,
    with X-Trace-Id ``trace``: its answer, and the JSON of the error lines its logger wrote meanwhile."""
    import asyncio
    import json
    import logging

    from stormproof.reference_app.main import create_app
    from stormproof.reference_app.obs.logging import JsonFormatter
    from stormproof.reference_app.settings import Settings

    settings = Settings(database_url="postgresql://unused", redis_url="redis://unused",
                        weakenings=frozenset({weakening} if weakened else ()))
    app = create_app(settings)

    @app.get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError("an error no handler maps")

    lines: list[dict] = []

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                lines.append(json.loads(self.format(record)))

    kept = Kept()
    kept.setFormatter(JsonFormatter())
    logger = logging.getLogger("stormproof.reference_app")
    logger.addHandler(kept)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/test-only/boom", headers={"X-Trace-Id": trace})

    try:
        return asyncio.run(call()), lines
    finally:
        logger.removeHandler(kept)


@FIX
def test_server_errors_counted(weakened: bool) -> None:
    """An error escaping its handler is answered 500 and counted in http_requests_total with the fix; without it
    the count is skipped, and metrics-agree finds fewer 5xx counted than the clients saw (server-errors)."""
    from prometheus_client import REGISTRY

    labels = {"method": "GET", "route": "/test-only/boom", "status": "500"}
    before = REGISTRY.get_sample_value("http_requests_total", labels) or 0.0
    answer, _ = _unhandled_error("server-errors-counted", weakened, "c" * 32)
    assert answer.status_code == 500
    counted = (REGISTRY.get_sample_value("http_requests_total", labels) or 0.0) - before
    assert counted == (0.0 if weakened else 1.0)


@FIX
def test_trace_on_errors(weakened: bool) -> None:
    """An error no handler maps is answered 500 with the request's X-Trace-Id with the fix; without it Starlette's
    outermost middleware answers, without the header (trace-echoed's trace-missing)."""
    answer, lines = _unhandled_error("trace-on-errors", weakened, "a" * 32)
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers.get("X-Trace-Id") == (None if weakened else "a" * 32), answer.headers
    assert [line["trace_id"] for line in lines] == ["a" * 32], lines


@FIX
def test_error_log_trace(weakened: bool) -> None:
    """An error no handler maps is logged under its request's trace id with the fix; without it the line carries
    none (the answer still has X-Trace-Id), and trace-echoed flags the 500 (error-log-untraced)."""
    answer, lines = _unhandled_error("error-log-trace", weakened, "b" * 32)
    assert answer.status_code == 500 and answer.headers.get("X-Trace-Id") == "b" * 32
    assert [line["trace_id"] for line in lines] == [None if weakened else "b" * 32], lines


@FIX
def test_shunya_failure_metrics(reference_app_module, weakened: bool) -> None:
    """Shunya's 5xx answers and failed jobs are counted with the fix; neither is without it."""
    from stormproof.harness.invariants.metrics import metric_sum

    app, baseline, stats = _failing_shunya(reference_app_module, ("shunya-failure-metrics",) if weakened else ())
    failed = sql_rows(app.database_url, "SELECT count(*) FROM shunya_jobs WHERE status = 'failed'")[0][0]
    injected = stats["api_errors_injected"]
    assert failed > 0 and injected > 0
    snap = replace_metrics(snapshot(app.database_url), httpx.get(f"{app.url}/metrics").text, baseline,
                           upstream_stats={"api_errors_injected": injected})
    assert snap.metrics is not None
    failures, errors = (metric_sum(snap.metrics, name) - (metric_sum(snap.baseline, name) or 0.0)
                        for name in ("shunya_job_failures_total", "shunya_api_errors_total"))
    if weakened:
        assert (failures, errors) == (0, 0)
    else:
        assert failures == failed and errors >= injected
    verdict = _verdict("metrics-agree", Recorder([]).history(), snap)
    types = {x.details["type"] for x in verdict.violations}
    assert types >= {"shunya-job-failures", "shunya-api-errors"} if weakened else not types & {
        "shunya-job-failures", "shunya-api-errors"}


@FIX
def test_failed_job_analysed(reference_app_module, weakened: bool) -> None:
    """Every job fails upstream: the calls end analysis_failed with no analysis with the fix; an analysis of
    each failed job without it. job-applied-once flags the second from the stub's failed jobs."""
    from dataclasses import replace

    app, _, _ = _failing_shunya(reference_app_module, ("failed-job-analysed",) if weakened else ())
    failed = {row[0] for row in sql_rows(app.database_url, "SELECT shunya_job_id FROM shunya_jobs "
                                         "WHERE status = 'failed'")}
    analysed = {row[0] for row in sql_rows(app.database_url, "SELECT shunya_job_id FROM call_analyses")}
    assert failed and (analysed >= failed if weakened else not analysed & failed)
    jobs = httpx.get(f"{app.shunya_url}/admin/jobs").json()["jobs"]
    final = replace(snapshot(app.database_url),
                    failed_jobs=frozenset(j["job_id"] for j in jobs if j.get("status") == "failed"))
    verdict = _verdict("job-applied-once", Recorder([]).history(), final)
    types = {x.details["type"] for x in verdict.violations}
    assert ("failed-job-analysed" in types) is weakened, verdict


@FIX
def test_failed_call_status(reference_app_module, weakened: bool) -> None:
    """Every job fails upstream: its call reads analysis_failed with the fix; submitted without.
    job-applied-once flags the second (call-status-stale)."""
    app, _, _ = _failing_shunya(reference_app_module, ("failed-call-status",) if weakened else ())
    statuses = {row[0] for row in sql_rows(app.database_url, "SELECT c.status FROM calls c JOIN shunya_jobs j "
                                           "ON j.call_id = c.id WHERE j.status = 'failed'")}
    assert statuses == ({"submitted"} if weakened else {"analysis_failed"})
    verdict = _verdict("job-applied-once", Recorder([]).history(), snapshot(app.database_url))
    assert ("call-status-stale" in {x.details["type"] for x in verdict.violations}) is weakened, verdict


@FIX
def test_duplicate_answered_applied(reference_app_module, weakened: bool) -> None:
    """A signed delivery sent twice: applied, then duplicate with the fix; applied twice without."""
    from tests.reference_app.background import delivery, shunya_job_id, submit_call

    app = reference_app_module(("duplicate-answered-applied",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_POLL_INTERVAL_MS": "60000"},
                               shunya={"complete_after_ms": 60000, "webhook_enabled": False})
    call = submit_call(app, app.tenants[0])
    body, headers = delivery(shunya_job_id(app, call), call, secret=app.webhook_secret)
    answers = [httpx.post(f"{app.url}/api/v1/shunya/webhook", content=body, headers=headers).json()["status"]
               for _ in range(2)]
    assert answers == ["applied", "applied" if weakened else "duplicate"]


def _a_job_nobody_applies(reference_app_module, weakened: bool, weakening: str):
    """An app (weakened or not) whose Shunya neither finishes nor delivers for a minute, nor its worker polls,
    and a call submitted to it: (app, tenant, call, Shunya job id). Only the test's deliveries apply it."""
    from tests.reference_app.background import shunya_job_id, submit_call

    app = reference_app_module((weakening,) if weakened else (), task_workers=1,
                               env={"STORMPROOF_POLL_INTERVAL_MS": "60000"},
                               shunya={"complete_after_ms": 60000, "webhook_enabled": False})
    tenant = app.tenants[0]
    call = submit_call(app, tenant)
    # A fresh app's one worker starting beside the other xdist worker on 2 cores took over 20 s once (2026-12-05).
    return app, tenant, call, shunya_job_id(app, call, timeout=60.0)


@FIX
def test_duplicate_delivery_conflict(reference_app_module, weakened: bool) -> None:
    """A signed delivery sent twice: applied, then 200 duplicate with the fix; refused 409 conflict without it,
    which refusals-explained flags (a delivery's contract has no 409)."""
    from tests.reference_app.background import delivery

    app, tenant, call, job = _a_job_nobody_applies(reference_app_module, weakened, "duplicate-delivery-conflict")
    body, headers = delivery(job, call, secret=app.webhook_secret)
    rec = Recorder([t.company_id for t in app.tenants])
    for _ in range(2):
        answer = httpx.post(f"{app.url}/api/v1/shunya/webhook", content=body, headers=headers)
        rec.record(v.WEBHOOK_DELIVER, tenant.company_id, answer, job_id=job, call_id=call["id"])
    assert (answer.status_code, answer.json().get("status")) == ((409, 409) if weakened else (200, "duplicate"))
    verdict = _verdict("refusals-explained", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    assert verdict.summary["answers_judged"] == 2 and verdict.summary["refusals"] == (1 if weakened else 0)


@FIX
def test_call_read_cache(reference_app_module, weakened: bool) -> None:
    """A call read, a signed delivery of its job answered applied, the call read again: the analysis shows with
    the fix; without it the read cached before the delivery answers none (reads-current flags stale-call)."""
    from tests.reference_app.background import delivery

    app, tenant, call, job = _a_job_nobody_applies(reference_app_module, weakened, "call-read-cache")
    rec = Recorder([t.company_id for t in app.tenants])
    url = f"{app.url}/api/v1/calls/{call['id']}"
    first = httpx.get(url, headers=auth(tenant.manager_token))
    assert first.status_code == 200 and first.json()["analyses"] == 0, first.text
    rec.record(v.CALL_READ, tenant.company_id, first, call_id=call["id"])
    body, headers = delivery(job, call, secret=app.webhook_secret)
    applied = httpx.post(f"{app.url}/api/v1/shunya/webhook", content=body, headers=headers)
    assert applied.json()["status"] == "applied", applied.text
    rec.record(v.WEBHOOK_DELIVER, tenant.company_id, applied, job_id=job, call_id=call["id"])
    read = httpx.get(url, headers=auth(tenant.manager_token))
    assert read.json()["analyses"] == (0 if weakened else 1), read.text
    rec.record(v.CALL_READ, tenant.company_id, read, call_id=call["id"])
    verdict = _verdict("reads-current", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    assert verdict.summary["call_reads_judged"] == 1
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"stale-call"}


@FIX
def test_retries_skipped(reference_app_module, weakened: bool) -> None:
    """Half of Shunya's answers fail: with 8 retries no task is dead-lettered with the fix; every task whose first
    call failed is without it, after 1 failure. dead-letter-accounting flags the second (gave-up-early)."""
    from dataclasses import replace

    from stormproof.harness.invariants import CheckConfig

    app, _, _ = _failing_shunya(reference_app_module, ("retries-skipped",) if weakened else ())
    attempts = [row[0] for row in sql_rows(app.database_url, "SELECT attempts FROM dead_letters")]
    assert (attempts and set(attempts) == {1}) if weakened else all(n >= 9 for n in attempts), attempts
    snap = replace(snapshot(app.database_url), config=CheckConfig(task_max_retries=8))
    verdict = _verdict("dead-letter-accounting", Recorder([]).history(), snap)
    assert ("gave-up-early" in {x.details["type"] for x in verdict.violations}) == weakened, verdict


@FIX
def test_shunya_429_refused(reference_app_module, weakened: bool) -> None:
    """Shunya answers its first three calls 429 (its quota) with a Retry-After: with the fix the submission waits
    and retries, and its call gets its job; without it the task is dead-lettered at the first 429, which
    dead-letter-accounting flags (gave-up-early: a throttle is transient)."""
    from dataclasses import replace

    from stormproof.harness.invariants import CheckConfig
    from tests.reference_app.background import wait_for

    app = reference_app_module(("shunya-429-refused",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0", "STORMPROOF_TASK_MAX_RETRIES": "8"},
                               shunya={"error_first": 3, "error_status": 429, "complete_after_ms": 60000,
                                       "webhook_enabled": False})
    try:
        tenant = app.tenants[0]
        answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
        assert answer.status_code == 202, answer.text
        done = ("SELECT count(*) FROM shunya_jobs WHERE shunya_job_id IS NOT NULL" if not weakened
                else "SELECT count(*) FROM dead_letters")
        wait_for(lambda: sql_rows(app.database_url, done)[0][0] >= 1, timeout=60,
                 what="the job created" if not weakened else "the submission dead-lettered")
        letters = sql_rows(app.database_url, "SELECT attempts, error FROM dead_letters")
        assert (len(letters) == 1 and "429" in letters[0][1]) if weakened else not letters, letters
        snap = replace(snapshot(app.database_url), config=CheckConfig(task_max_retries=8))
        verdict = _verdict("dead-letter-accounting", Recorder([]).history(), snap)
        assert ("gave-up-early" in {x.details["type"] for x in verdict.violations}) == weakened, verdict
    finally:
        reference_app_module.stop(app, wait=False)


@FIX
def test_shunya_error_endpoint(reference_app_module, weakened: bool) -> None:
    """Errors on job creations and on polls move shunya_api_errors_total under create_job and get_job with the
    fix; all under create_job without. metrics-agree flags the second (shunya-errors-by-endpoint)."""
    from stormproof.harness.invariants.metrics import metric_sum

    app, baseline, stats = _failing_shunya(reference_app_module, ("shunya-error-endpoint",) if weakened else ())
    assert set(stats["api_errors_by_route"]) == {"POST /v1/jobs", "GET /v1/jobs/{job_id}"}, stats
    snap = replace_metrics(snapshot(app.database_url), httpx.get(f"{app.url}/metrics").text, baseline,
                           upstream_stats=stats)
    assert snap.metrics is not None
    polls = metric_sum(snap.metrics, "shunya_api_errors_total", endpoint="get_job") or 0.0
    assert (polls == 0) if weakened else (polls > 0)
    verdict = _verdict("metrics-agree", Recorder([]).history(), snap)
    types = {x.details["type"] for x in verdict.violations}
    assert ("shunya-errors-by-endpoint" in types) == weakened, verdict


def replace_metrics(snap, metrics_text: str, baseline_text: str, **fields):
    """The snapshot with the app's counters (and the stub's) as the runner's capture adds them."""
    from dataclasses import replace

    from stormproof.harness.invariants.metrics import parse_metrics

    return replace(snap, metrics=parse_metrics(metrics_text), baseline=parse_metrics(baseline_text), **fields)


# -- A1 polling ----------------------------------------------------------------------------------
@FIX
def test_poll_until_done(reference_app_module, weakened: bool) -> None:
    """Without webhooks, polling applies a slow job's result with the fix; the poller stops at "pending" without."""
    from tests.reference_app.background import ledger_settled, wait_for

    app = reference_app_module(("poll-until-done",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0", "STORMPROOF_POLL_INTERVAL_MS": "200"},
                               shunya={"complete_after_ms": 1500, "webhook_enabled": False})
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
    rec.record(v.CALL_SUBMIT, tenant.company_id, answer, body={})
    assert answer.status_code == 202, answer.text

    def completed() -> set[str]:
        jobs = httpx.get(f"{app.shunya_url}/admin/jobs").json()["jobs"]
        return {job["job_id"] for job in jobs if job.get("status") == "completed"}

    done = wait_for(completed, timeout=30, what="Shunya to complete the job")
    wait_for(lambda: ledger_settled(app), timeout=30, what="every task to settle")
    applied = sql_rows(app.database_url, "SELECT count(*) FROM call_analyses")[0][0]
    assert applied == (0 if weakened else 1)
    from dataclasses import replace

    snap = replace(snapshot(app.database_url), completed_jobs=frozenset(done))
    assert _verdict("job-applied-eventually", rec.history(), snap).status == ("invalid" if weakened else "valid")


# -- brief 5: no lost acknowledged write ----------------------------------------------------------
@FIX
def test_stop_write_behind(apps, weakened: bool) -> None:
    """A stop answered 200 is in the database with the fix; only in a write buffer without it (a crash loses it)."""
    app = apps(*(("stop-write-behind",) if weakened else ()), STORMPROOF_WRITE_BEHIND_MS="600000")
    tenant = app.tenants[1]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = tenant.appointment_ids[2]
    body = {"appointment_id": appointment}
    started = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()), json=body)
    rec.record(v.SESSION_START, tenant.company_id, started, body=body, appointment_id=appointment)
    assert started.status_code == 201, started.text
    session = started.json()["id"]
    stopped = httpx.post(f"{app.url}/api/v1/recordings/sessions/{session}/stop",
                         headers=auth(tenant.rep_tokens[0], new_key()))
    rec.record(v.SESSION_STOP, tenant.company_id, stopped, session_id=session)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped", stopped.text
    (status,) = sql_rows(app.database_url, "SELECT status FROM recording_sessions WHERE id = %s", session)[0]
    assert status == ("recording" if weakened else "stopped")
    verdict = _verdict("no-lost-acknowledged-write", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid")


# -- E4 pool gauges ------------------------------------------------------------------------------
@FIX
def test_pool_gauges(apps, weakened: bool) -> None:
    """db_pool_active is the connections in use with the fix; check-outs counted forever without it."""
    from tests.reference_app.background import metric

    app = apps(*(("pool-gauges",) if weakened else ()))
    tenant = app.tenants[0]
    httpx.get(f"{app.url}/metrics")  # the weakened gauge starts counting at its first scrape
    for _ in range(30):
        answer = httpx.get(f"{app.url}/api/v1/appointments/{tenant.appointment_ids[0]}",
                           headers=auth(tenant.manager_token))
        assert answer.status_code == 200, answer.text
    active, idle = metric(app, "db_pool_active"), metric(app, "db_pool_idle")
    size, overflow = metric(app, "db_pool_size"), metric(app, "db_pool_overflow")
    assert (active + idle > size + overflow) is weakened, (active, idle, size, overflow)


@FIX
def test_pool_gauges_source(apps, weakened: bool) -> None:
    """Between requests the app's pool holds the connections it opened: the gauges show them with the fix; a
    pool of the metrics' own shows none, ever. metrics-agree flags the second from samples (pool-gauges-blind)."""
    from stormproof.harness.invariants import Snapshot
    from stormproof.harness.invariants.metrics import parse_metrics

    app = apps(*(("pool-gauges-source",) if weakened else ()))
    tenant = app.tenants[0]
    samples, text = [], ""
    for t in range(6):
        for _ in range(5):
            answer = httpx.get(f"{app.url}/api/v1/appointments/{tenant.appointment_ids[0]}",
                               headers=auth(tenant.manager_token))
            assert answer.status_code == 200, answer.text
        text = httpx.get(f"{app.url}/metrics").text
        gauges = {k: v for k, v in parse_metrics(text).items() if k.startswith("db_pool_")}
        samples.append({"t": float(t), "broker_before": 0.0, "broker_after": 0.0, **gauges})
    held = [s["db_pool_active"] + s["db_pool_idle"] for s in samples]
    assert all(s["db_pool_size"] > 0 for s in samples)
    assert (max(held) == 0) if weakened else (min(held) >= 1), held
    snap = Snapshot.build({}, metrics_text=text, baseline_text=text, gauge_samples=samples)
    verdict = _verdict("metrics-agree", Recorder([]).history(), snap)
    assert ("pool-gauges-blind" in {x.details["type"] for x in verdict.violations}) == weakened, verdict


# -- E3 queue depth ------------------------------------------------------------------------------
@FIX
def test_active_tasks_gauge(reference_app_module, weakened: bool) -> None:
    """Tasks running on a worker (Shunya answers in 3 s) sit in the broker's unacked hash: celery_active_tasks
    shows them with the fix, 0 without. metrics-agree flags the second from samples (active-tasks-blind)."""
    import redis

    from stormproof.harness.invariants import Snapshot
    from stormproof.harness.invariants.metrics import metric_sum, parse_metrics
    from stormproof.harness.runner.sampling import unacked_length
    from tests.reference_app.background import wait_for

    app = reference_app_module(("active-tasks-gauge",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0"},
                               shunya={"latency_ms": 3000, "webhook_enabled": False})
    tenant = app.tenants[0]
    for _ in range(4):
        answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
        assert answer.status_code == 202, answer.text
    client = redis.Redis.from_url(app.redis_url)
    samples, text = [], ""
    try:
        wait_for(lambda: unacked_length(client) >= 2, timeout=30, what="the worker to take the tasks")
        for t in range(2):
            before = unacked_length(client)
            text = httpx.get(f"{app.url}/metrics").text
            after = unacked_length(client)
            gauges = {k: v for k, v in parse_metrics(text).items() if k.startswith("celery_")}
            samples.append({"t": float(t), "broker_before": 0.0, "broker_after": 0.0, "unacked_before": float(before),
                            "unacked_after": float(after), **gauges})
    finally:
        client.close()
    assert all(min(s["unacked_before"], s["unacked_after"]) >= 2 for s in samples), samples
    shown = [metric_sum(s, "celery_active_tasks") for s in samples]
    assert all(n == 0 for n in shown) if weakened else all(n and n >= 1 for n in shown), shown
    snap = Snapshot.build({}, metrics_text=text, baseline_text=text, gauge_samples=samples)
    verdict = _verdict("metrics-agree", Recorder([]).history(), snap)
    assert ("active-tasks-blind" in {x.details["type"] for x in verdict.violations}) == weakened, verdict


@FIX
def test_queue_depth_gauge(apps, weakened: bool) -> None:
    """With no worker to take them, submitted tasks wait in the broker: the gauge shows them with the fix, 0 without."""
    import redis

    from stormproof.harness.runner.sampling import queue_length
    from tests.reference_app.background import metric, wait_for

    app = apps(*(("queue-depth-gauge",) if weakened else ()))
    tenant = app.tenants[0]
    for _ in range(3):
        answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
        assert answer.status_code == 202, answer.text
    client = redis.Redis.from_url(app.redis_url)
    try:
        waiting = wait_for(lambda: queue_length(client) >= 3 and queue_length(client), timeout=30,
                           what="the relay to publish the tasks")
        depth = metric(app, "celery_queue_depth")
        assert queue_length(client) >= 3
    finally:
        client.close()
    assert waiting >= 3 and (depth == 0 if weakened else depth >= 3)


# -- E1 trace ids --------------------------------------------------------------------------------
@FIX
def test_trace_echo(apps, weakened: bool) -> None:
    """The caller's X-Trace-Id comes back with the fix; another id comes back without it (trace-echoed flags)."""
    app = apps(*(("trace-echo",) if weakened else ()))
    tenant = app.tenants[0]
    trace = f"trace-{uuid.uuid4().hex}"
    answer = httpx.get(f"{app.url}/api/v1/appointments/{tenant.appointment_ids[0]}",
                       headers=auth(tenant.manager_token, **{"X-Trace-Id": trace}))
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Trace-Id"] != "" and (answer.headers["X-Trace-Id"] == trace) is not weakened


@FIX
def test_traceparent_ignored(apps, weakened: bool) -> None:
    """A request traced by a W3C traceparent alone gets its trace-id back as X-Trace-Id with the fix; a new id
    without it. The load's record of the answer says "other" then, which trace-echoed flags."""
    from stormproof.harness.load.client import sent_trace_id, trace_echo, traceparent

    app = apps(*(("traceparent-ignored",) if weakened else ()))
    tenant = app.tenants[0]
    trace = uuid.uuid4().hex
    sent = {"traceparent": traceparent(trace, uuid.uuid4().hex[:16])}
    answer = httpx.get(f"{app.url}/api/v1/appointments/{tenant.appointment_ids[0]}",
                       headers=auth(tenant.manager_token, **sent))
    assert answer.status_code == 200, answer.text
    assert sent_trace_id(sent) == trace
    assert trace_echo(sent_trace_id(sent), answer.headers) == ("other" if weakened else "echoed")


# -- F3 ----------------------------------------------------------------------------------------
def _judged_grant(app, tenant, answer: httpx.Response, **args: object):
    """consent-before-processing's verdict on one consent grant (``args`` as the load records them), judged at
    the real time of the request (the recorder's wall clock is synthetic)."""
    rec = Recorder([t.company_id for t in app.tenants])
    rec.record(v.CONSENT_GRANT, tenant.company_id, answer, **args)
    return _verdict("consent-before-processing", _at_wall(rec.history(), time.time()), snapshot(app.database_url))


@FIX
def test_consent_forwarded_for(apps, weakened: bool) -> None:
    """A consent's IP is the connection's with the fix, even with uvicorn in front trusting loopback
    proxies (the app runs with --no-proxy-headers); the client's X-Forwarded-For without it.

    consent-before-processing flags the second (evidence-ip-from-client)."""
    app = apps(*(("consent-forwarded-for",) if weakened else ()))
    tenant = app.tenants[0]
    appointment = tenant.appointment_ids[0]
    spoofed, agent, evidence = "203.0.113.9", "weakening-test/1", "agreed on the phone \u2014 v2"
    headers = {**auth(tenant.manager_token), "X-Forwarded-For": spoofed, "User-Agent": agent}
    answer = httpx.post(f"{app.url}/api/v1/appointments/{appointment}/consents", headers=headers,
                        json={"scope": "recording", "evidence": evidence})
    assert answer.status_code == 201, answer.text
    assert answer.json()["ip"] == (spoofed if weakened else "127.0.0.1")
    verdict = _judged_grant(app, tenant, answer, appointment_id=appointment, scope="recording",
                            forwarded_for=spoofed, user_agent=agent, evidence=evidence)
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"evidence-ip-from-client"}


@FIX
def test_consent_evidence_normalised(apps, weakened: bool) -> None:
    """An evidence text with white space at its edges, CRLF line ends and an NFD accent is kept byte for byte
    with the fix; tidied up without. consent-before-processing flags the second (evidence-altered)."""
    app = apps(*(("consent-evidence-normalised",) if weakened else ()))
    tenant = app.tenants[0]
    appointment = tenant.appointment_ids[0]
    agent, evidence = "weakening-test/1", "  agreed on the phone\r\n\tby Rene\u0301\r\n"
    headers = {**auth(tenant.manager_token), "User-Agent": agent}
    answer = httpx.post(f"{app.url}/api/v1/appointments/{appointment}/consents", headers=headers,
                        json={"scope": "recording", "evidence": evidence})
    assert answer.status_code == 201, answer.text
    assert (answer.json()["evidence"] == evidence) is not weakened
    verdict = _judged_grant(app, tenant, answer, appointment_id=appointment, scope="recording", user_agent=agent,
                            evidence=evidence, layout=True)
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"evidence-altered"}


@FIX
def test_legacy_consent_check(apps, weakened: bool) -> None:
    """A new appointment nobody consented to: the session start is refused 409 consent-required either way;
    the legacy start too with the fix, and records it without (consent-before-processing flags the session)."""
    app = apps(*(("legacy-consent-check",) if weakened else ()))
    tenant = app.tenants[0]
    created = httpx.post(f"{app.url}/api/v1/appointments", headers=auth(tenant.manager_token),
                         json={"title": "no consent", "starts_at": "2031-03-01T10:00:00Z",
                               "ends_at": "2031-03-01T10:30:00Z"})
    assert created.status_code == 201, created.text
    appointment = created.json()["id"]
    body = {"appointment_id": appointment}
    rec = Recorder([t.company_id for t in app.tenants])
    for f, path in ((v.SESSION_START, START), (v.LEGACY_START, "/api/v1/recordings/start")):
        answer = httpx.post(app.url + path, headers=auth(tenant.rep_tokens[0], new_key()), json=body)
        rec.record(f, tenant.company_id, answer, body=body, appointment_id=appointment)
    statuses = [op.status for op in rec.history() if op.type != "invoke"]
    assert statuses == [409, 201 if weakened else 409], statuses
    verdict = _verdict("consent-before-processing", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_consent_via_session(apps, weakened: bool) -> None:
    """A call named by its recording session alone, on an appointment with a recording consent only: refused
    409 consent-required with the fix; accepted 202 without it, and its analysis (applied here as the worker
    would) is flagged by consent-before-processing through the session's appointment."""
    app = apps(*(("consent-via-session",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant, ("recording",))
    started = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()),
                         json={"appointment_id": appointment})
    assert started.status_code == 201, started.text
    session = started.json()["id"]
    body = {"recording_session_id": session}
    call = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json=body)
    rec.record(v.CALL_SUBMIT, tenant.company_id, call, body=body, recording_session_id=session)
    if not weakened:
        assert call.status_code == 409 and _problem_type(call) == "consent-required", call.text
    else:
        assert call.status_code == 202, call.text
        _execute(app, "INSERT INTO call_analyses (id, company_id, call_id, shunya_job_id, output_hash, result, "
                      "applied_by) VALUES (%s, %s, %s, 'shj_test', 'h', '{}', 'webhook')",
                 uuid.uuid4(), tenant.company_id, call.json()["id"])
    verdict = _verdict("consent-before-processing", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {(x.details["type"], x.details["appointment_id"]) for x in verdict.violations} == {
            ("analysed-without-consent", appointment)}


@FIX
def test_call_session_unlinked(apps, weakened: bool) -> None:
    """A call named by its recording session, on an appointment with both consents: accepted 202 either way; with
    the fix it keeps the session in its answer and its row, without it neither (no-lost-acknowledged-write flags
    call-unlinked)."""
    app = apps(*(("call-session-unlinked",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant, ("recording", "analysis"))
    started = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()),
                         json={"appointment_id": appointment})
    assert started.status_code == 201, started.text
    rec.record(v.SESSION_START, tenant.company_id, started, appointment_id=appointment)
    session = started.json()["id"]
    body = {"recording_session_id": session}
    call = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json=body)
    assert call.status_code == 202, call.text
    assert call.json()["recording_session_id"] == (None if weakened else session), call.text
    rec.record(v.CALL_SUBMIT, tenant.company_id, call, body=body, appointment_id=appointment,
               recording_session_id=session, via="session")
    verdict = _verdict("no-lost-acknowledged-write", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [(x.details["type"], x.details["field"]) for x in verdict.violations] == [
            ("call-unlinked", "recording_session_id")]


@FIX
def test_call_created_at_frozen(apps, weakened: bool) -> None:
    """Two calls submitted 1.5 s apart: stamped while each ran with the fix; without it both with the moment the
    app imported its routes (no-lost-acknowledged-write flags created-at-off)."""
    app = apps(*(("call-created-at-frozen",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant, ("recording", "analysis"))
    body = {"appointment_id": appointment}
    for n in range(2):
        if n:
            time.sleep(1.5)
        sent = time.time()
        call = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json=body)
        assert call.status_code == 202, call.text
        rec.record(v.CALL_SUBMIT, tenant.company_id, call, body=body, appointment_id=appointment,
                   wall=(sent, time.time()))
    verdict = _verdict("no-lost-acknowledged-write", rec.history(), snapshot(app.database_url))
    assert verdict.summary["creation_times_judged"] == 2, verdict.summary
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [x.details["type"] for x in verdict.violations] == ["created-at-off"]


@FIX
def test_task_dedupe_ledger(reference_app_module, weakened: bool) -> None:
    """A call's first poll ended (its job applied); a refresh then queues a new poll with the fix (deduplicated:
    false); without it, it answers deduplicated with the finished poll and queues nothing (task-deduplicated
    flags refresh-answer-untrue)."""
    app = reference_app_module(("task-dedupe-ledger",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0", "STORMPROOF_POLL_INTERVAL_MS": "100"},
                               shunya={"complete_after_ms": 0, "webhook_enabled": False})
    try:
        _refresh_after_the_poll(app, weakened)
    finally:
        reference_app_module.stop(app, wait=False)


def _refresh_after_the_poll(app, weakened: bool) -> None:
    from tests.reference_app.background import wait_for

    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant, ("recording", "analysis"))
    body = {"appointment_id": appointment}
    calls = []
    for _ in range(2):  # two creation times: the offset between the app's clock and ours
        sent = time.time()
        call = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json=body)
        assert call.status_code == 202, call.text
        rec.record(v.CALL_SUBMIT, tenant.company_id, call, body=body, appointment_id=appointment,
                   wall=(sent, time.time()))
        calls.append(call.json()["id"])
    ended = ("SELECT count(*) FROM task_records t JOIN shunya_jobs j ON t.dedupe_key = j.id::text "
             "WHERE j.call_id = %s AND t.finished_at IS NOT NULL")
    wait_for(lambda: sql_rows(app.database_url, ended, calls[0])[0][0] >= 1, timeout=60,
             what="the call's first poll to end")
    time.sleep(1.5)  # past the checker's tolerance
    sent = time.time()
    refresh = httpx.post(f"{app.url}/api/v1/calls/{calls[0]}/refresh", headers=auth(tenant.manager_token))
    assert refresh.status_code == 202, refresh.text
    rec.record(v.CALL_REFRESH, tenant.company_id, refresh, call_id=calls[0], wall=(sent, time.time()))
    assert refresh.json()["deduplicated"] is weakened, refresh.json()
    verdict = _verdict("task-deduplicated", rec.history(), snapshot(app.database_url))
    assert verdict.summary["refreshes_judged"] == 1, verdict.summary
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [x.details["type"] for x in verdict.violations] == ["refresh-answer-untrue"]


@FIX
def test_consent_commit(apps, weakened: bool) -> None:
    """A consent granted 201 is in the database with the fix; not without it, though its appointment is
    (no-lost-acknowledged-write flags consent-lost)."""
    app = apps(*(("consent-commit",) if weakened else ()))
    tenant = app.tenants[1]
    appointment = tenant.appointment_ids[2]
    answer = httpx.post(f"{app.url}/api/v1/appointments/{appointment}/consents", headers=auth(tenant.manager_token),
                        json={"scope": "analysis", "evidence": "agreed by email"})
    assert answer.status_code == 201, answer.text
    stored = sql_rows(app.database_url, "SELECT count(*) FROM consents WHERE id = %s", answer.json()["id"])[0][0]
    assert stored == (0 if weakened else 1)
    rec = Recorder([t.company_id for t in app.tenants])
    rec.record(v.CONSENT_GRANT, tenant.company_id, answer, appointment_id=appointment, scope="analysis")
    verdict = _verdict("no-lost-acknowledged-write", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@contextmanager
def _redis_down(app):
    """The app's Redis link refusing while the block runs: what a Redis restart looks like from the app."""
    from stormproof.harness.faults.client import ToxiproxyClient

    with ToxiproxyClient(app.stack.proxy_api_url) as proxies:
        proxies.disable_proxy("redis")
        try:
            yield
        finally:
            proxies.enable_proxy("redis")


@FIX
def test_redis_fail_open(reference_app_module, weakened: bool) -> None:
    """With Redis unreachable, writes and reads still answer with the fix (locks and limits fail open);
    without it every request that touches a lock or a rate limit answers 500, and slo-error-rate says so."""
    from stormproof.harness.invariants import CheckConfig, Snapshot

    app = reference_app_module(("redis-fail-open",) if weakened else (), tenants=1, appointments=3,
                               proxies=True, shunya={"webhook_enabled": False})
    tenant = app.tenants[0]
    rec = Recorder([tenant.company_id])
    with _redis_down(app):
        for appointment in tenant.appointment_ids[:3]:
            body = {"appointment_id": appointment}
            answer = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()), json=body,
                                timeout=30)
            rec.record(v.SESSION_START, tenant.company_id, answer, body=body, appointment_id=appointment)
            read = httpx.get(f"{app.url}/api/v1/appointments/{appointment}",
                             headers=auth(tenant.rep_tokens[0]), timeout=30)
            rec.record(v.APPOINTMENT_READ, tenant.company_id, read, appointment_id=appointment)
    statuses = [op.status for op in rec.history().ops if op.type != "invoke"]
    if weakened:
        assert statuses and set(statuses) == {500}, statuses
    else:
        assert statuses == [201, 200] * 3, statuses
    (verdict,) = check_all(rec.history(), Snapshot.build({}), ["slo-error-rate"],
                           config=CheckConfig(error_rate_max=0.02))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict


@FIX
def test_rate_limit_fail_closed(reference_app_module, weakened: bool) -> None:
    """With Redis unreachable, a tenant far within its API limit is served with the fix (the limit fails open);
    without it every request is refused 429, and rate-limit-enforced flags each (quiet-tenant-limited)."""
    from stormproof.harness.invariants import CheckConfig, Snapshot

    app = reference_app_module(("rate-limit-fail-closed",) if weakened else (), tenants=1, appointments=3,
                               proxies=True, shunya={"webhook_enabled": False})
    tenant = app.tenants[0]
    rec = Recorder([tenant.company_id])
    with _redis_down(app):
        for appointment in tenant.appointment_ids[:3]:
            read = httpx.get(f"{app.url}/api/v1/appointments/{appointment}",
                             headers=auth(tenant.rep_tokens[0]), timeout=30)
            rec.record(v.APPOINTMENT_READ, tenant.company_id, read, appointment_id=appointment)
    statuses = [op.status for op in rec.history().ops if op.type != "invoke"]
    assert statuses == ([429] * 3 if weakened else [200] * 3), statuses
    (verdict,) = check_all(rec.history(), Snapshot.build({}), ["rate-limit-enforced"],
                           config=CheckConfig(rate_limit_per_s=200, rate_limit_burst=400))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert "quiet-tenant-limited" in {x.details["type"] for x in verdict.violations}


@FIX
def test_unassign_commit(apps, weakened: bool) -> None:
    """An unassign answered 200 released the assignment with the fix; without it the assignment stays active
    (no-lost-acknowledged-write flags unassign-lost)."""
    app = apps(*(("unassign-commit",) if weakened else ()))
    tenant = app.tenants[1]
    day = datetime(2045 + random.randrange(50), 1, 1, 9, tzinfo=timezone.utc) + timedelta(days=random.randrange(360))
    window = {"title": "assigned once", "starts_at": day.isoformat(), "ends_at": (day + timedelta(hours=1)).isoformat()}
    made = httpx.post(f"{app.url}/api/v1/appointments", headers=auth(tenant.manager_token), json=window)
    assert made.status_code == 201, made.text
    appointment = made.json()["id"]
    rec = Recorder([t.company_id for t in app.tenants])
    assigned = httpx.post(f"{app.url}/api/v1/appointments/{appointment}/assign",
                          headers=auth(tenant.manager_token, new_key()), json={"rep_id": tenant.rep_ids[0]})
    assert assigned.status_code == 200, assigned.text
    rec.record(v.ASSIGN, tenant.company_id, assigned, appointment_id=appointment, rep_id=tenant.rep_ids[0])
    answer = httpx.post(f"{app.url}/api/v1/appointments/{appointment}/unassign",
                        headers=auth(tenant.manager_token, new_key()))
    assert answer.status_code == 200 and answer.json()["assigned_rep_id"] is None, answer.text
    rec.record(v.UNASSIGN, tenant.company_id, answer, appointment_id=appointment)
    status = sql_rows(app.database_url, "SELECT status FROM appointment_assignments WHERE id = %s",
                      assigned.json()["id"])[0][0]
    assert status == ("active" if weakened else "released")
    verdict = _verdict("no-lost-acknowledged-write", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"unassign-lost"}


def _authz_probe(rec: Recorder, tenant, answer: httpx.Response, route: str, role: str, roles: list[str]) -> None:
    rec.record(v.PROBE_AUTHZ, tenant.company_id, answer, route=route, role=role, required_roles=roles,
               method=route.split(" ", 1)[0], path=answer.request.url.path)


@FIX
def test_manager_role(apps, weakened: bool) -> None:
    """A rep unassigning (a manager-only route) is refused 403 with the fix; served 200 without it
    (authorization flags forbidden-success)."""
    app = apps(*(("manager-role",) if weakened else ()))
    tenant = app.tenants[1]
    appointment = _consented_appointment(app, tenant, scopes=())
    rec = Recorder([t.company_id for t in app.tenants])
    answer = httpx.post(f"{app.url}/api/v1/appointments/{appointment}/unassign",
                        headers=auth(tenant.rep_tokens[0], new_key()))
    assert answer.status_code == (200 if weakened else 403), answer.text
    _authz_probe(rec, tenant, answer, "POST /api/v1/appointments/{appointment_id}/unassign", "rep", ["manager"])
    verdict = _verdict("authorization", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert verdict.violations[0].details["type"] == "forbidden-success"


@FIX
def test_token_expiry(apps, weakened: bool) -> None:
    """An expired token is refused 401 with the fix; served without it (authorization flags
    unauthenticated-success)."""
    app = apps(*(("token-expiry",) if weakened else ()))
    tenant = app.tenants[1]
    assert tenant.expired_token
    rec = Recorder([t.company_id for t in app.tenants])
    answer = httpx.get(f"{app.url}/api/v1/appointments", headers=auth(tenant.expired_token))
    assert answer.status_code == (200 if weakened else 401), answer.text
    _authz_probe(rec, tenant, answer, "GET /api/v1/appointments", "expired", [])
    verdict = _verdict("authorization", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert verdict.violations[0].details["type"] == "unauthenticated-success"


@FIX
def test_token_cache_expiry(apps, weakened: bool) -> None:
    """A token served while live is refused 401 once it has expired with the fix; without it the app's cache of
    verified tokens serves it still (authorization flags unauthenticated-success on the lapsed probe). A token
    expired before its first use is refused either way: the seed's expired token cannot show this."""
    from stormproof.harness.load.tokens import LEEWAY_S, lapsing_token

    app = apps(*(("token-cache-expiry",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    lapsing = lapsing_token(tenant.manager_token, app.stack.jwt_secret, 2.0)
    assert lapsing is not None
    route, path = "GET /api/v1/appointments", f"{app.url}/api/v1/appointments"
    live = httpx.get(path, headers=auth(lapsing.token))
    assert live.status_code == 200, live.text
    rec.record(v.PROBE_AUTHZ, tenant.company_id, live, route=route, role="lapsing", required_roles=[],
               method="GET", path="/api/v1/appointments", **lapsing.args(time.time()))
    time.sleep(max(0.0, lapsing.exp + LEEWAY_S - time.time()))
    lapsed = httpx.get(path, headers=auth(lapsing.token))
    assert lapsed.status_code == (200 if weakened else 401), lapsed.text
    rec.record(v.PROBE_AUTHZ, tenant.company_id, lapsed, route=route, role="lapsed", required_roles=[],
               method="GET", path="/api/v1/appointments", **lapsing.args(time.time()))
    verdict = _verdict("authorization", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    assert verdict.summary["lapsed_after_served"] == 1
    if weakened:
        assert verdict.violations[0].details["type"] == "unauthenticated-success"


@FIX
def test_consent_latest_scope(apps, weakened: bool) -> None:
    """A start on an appointment with a recording consent is served with the fix, though its latest consent is an
    analysis one; without it the latest consent decides, the start is refused 409 consent-required
    (consent-before-processing flags refused-with-consent)."""
    app = apps(*(("consent-latest-scope",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant, scopes=("recording", "analysis"), rec=rec)
    started = httpx.post(f"{app.url}/api/v1/recordings/sessions/start", headers=auth(tenant.manager_token, new_key()),
                         json={"appointment_id": appointment})
    assert started.status_code == (409 if weakened else 201), started.text
    rec.record(v.SESSION_START, tenant.company_id, started, appointment_id=appointment)
    verdict = _verdict("consent-before-processing", rec.history(), snapshot(app.database_url))
    # Only this rule: the recorder's clock (wall 1e9 s) is not the database's, so the grants' evidence-granted-at
    # fires in both halves alike.
    refused = [x for x in verdict.violations if x.details["type"] == "refused-with-consent"]
    assert len(refused) == (1 if weakened else 0), verdict
    assert verdict.summary["consent_refusals_judged"] == (1 if weakened else 0)


@FIX
def test_appointment_released_counted(apps, weakened: bool) -> None:
    """After an appointment's rep is unassigned, another rep is assigned with the fix; without it the released
    assignment still counts and the assign is refused 409 appointment-already-assigned (single-assignment flags
    already-assigned-unexplained)."""
    app = apps(*(("appointment-released-counted",) if weakened else ()))
    tenant = app.tenants[0]
    appointment = _consented_appointment(app, tenant, scopes=())
    rec = Recorder([t.company_id for t in app.tenants])
    first, second = tenant.rep_ids[0], tenant.rep_ids[1]
    url = f"{app.url}/api/v1/appointments/{appointment}"
    answer = httpx.post(f"{url}/assign", headers=auth(tenant.manager_token, new_key()), json={"rep_id": first})
    assert answer.status_code == 200, answer.text
    rec.record(v.ASSIGN, tenant.company_id, answer, appointment_id=appointment, rep_id=first)
    answer = httpx.post(f"{url}/unassign", headers=auth(tenant.manager_token, new_key()))
    assert answer.status_code == 200, answer.text
    rec.record(v.UNASSIGN, tenant.company_id, answer, appointment_id=appointment)
    answer = httpx.post(f"{url}/assign", headers=auth(tenant.manager_token, new_key()), json={"rep_id": second})
    assert answer.status_code == (409 if weakened else 200), answer.text
    rec.record(v.ASSIGN, tenant.company_id, answer, appointment_id=appointment, rep_id=second)
    verdict = _verdict("single-assignment", rec.history())
    unexplained = [x for x in verdict.violations if x.details["type"] == "already-assigned-unexplained"]
    assert len(unexplained) == (1 if weakened else 0), verdict
    assert verdict.summary["already_assigned_refusals_judged"] == (1 if weakened else 0)


@FIX
def test_start_skip_locked(apps, weakened: bool) -> None:
    """A start while another transaction holds its appointment's row (FOR NO KEY UPDATE, which a start's foreign
    key check does not wait for) starts the session with the fix; without it the start skips the locked row and
    answers 404 for the tenant's own appointment (tenant-isolation flags own-row-not-found)."""
    app = apps(*(("start-skip-locked",) if weakened else ()))
    tenant = app.tenants[0]
    appointment = _consented_appointment(app, tenant)
    rec = Recorder([t.company_id for t in app.tenants])
    with psycopg.connect(app.database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("SELECT id FROM appointments WHERE id = %s FOR NO KEY UPDATE", (appointment,))
        started = httpx.post(f"{app.url}/api/v1/recordings/sessions/start", timeout=15,
                             headers=auth(tenant.manager_token, new_key()), json={"appointment_id": appointment})
    assert started.status_code == (404 if weakened else 201), started.text
    rec.record(v.SESSION_START, tenant.company_id, started, appointment_id=appointment)
    verdict = _verdict("tenant-isolation", rec.history(), snapshot(app.database_url))
    own = [x for x in verdict.violations if x.details["type"] == "own-row-not-found"]
    assert len(own) == (1 if weakened else 0), verdict
    assert verdict.summary["own_row_404s"] == (1 if weakened else 0)


@FIX
def test_policy_put_fields(apps, weakened: bool) -> None:
    """PUT /retention-policy stores the days it was sent with the fix; without it the appointment days are the
    call days (retention-enforced flags policy-lost)."""
    app = apps(*(("policy-put-fields",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    policy = {"call_days": 30, "appointment_days": 100}  # what test_retention_tenant_scope sets too
    answer = httpx.put(f"{app.url}/api/v1/retention-policy", headers=auth(tenant.manager_token), json=policy)
    assert answer.status_code == 200 and answer.json()["appointment_days"] == policy["appointment_days"], answer.text
    rec.record(v.RETENTION_POLICY_PUT, tenant.company_id, answer, **policy)
    stored = sql_rows(app.database_url, "SELECT call_days, appointment_days FROM retention_policies WHERE "
                      "company_id = %s", tenant.company_id)[0]
    assert tuple(stored) == ((policy["call_days"],) * 2 if weakened else (policy["call_days"],
                                                                          policy["appointment_days"]))
    verdict = _verdict("retention-enforced", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"policy-lost"}
    if weakened:  # the policy as sent, for the other tests of this app
        _execute(app, "UPDATE retention_policies SET appointment_days = %s WHERE company_id = %s",
                 policy["appointment_days"], tenant.company_id)


@FIX
def test_read_cache(apps, weakened: bool) -> None:
    """A session read after its stop was acknowledged answers it stopped with the fix; without it the read
    cached before the stop answers recording (reads-current flags stale-session)."""
    app = apps(*(("read-cache",) if weakened else ()))
    tenant = app.tenants[1]
    appointment = _consented_appointment(app, tenant)
    rec = Recorder([t.company_id for t in app.tenants])
    started = httpx.post(app.url + START, headers=auth(tenant.rep_tokens[0], new_key()),
                         json={"appointment_id": appointment})
    assert started.status_code == 201, started.text
    rec.record(v.SESSION_START, tenant.company_id, started, appointment_id=appointment)
    session = started.json()["id"]
    url = f"{app.url}/api/v1/recordings/sessions/{session}"
    first = httpx.get(url, headers=auth(tenant.rep_tokens[0]))
    rec.record(v.SESSION_READ, tenant.company_id, first, session_id=session)
    stopped = httpx.post(f"{url}/stop", headers=auth(tenant.rep_tokens[0], new_key()))
    assert stopped.status_code == 200, stopped.text
    rec.record(v.SESSION_STOP, tenant.company_id, stopped, session_id=session)
    read = httpx.get(url, headers=auth(tenant.rep_tokens[0]))
    assert read.status_code == 200 and read.json()["status"] == ("recording" if weakened else "stopped"), read.text
    rec.record(v.SESSION_READ, tenant.company_id, read, session_id=session)
    verdict = _verdict("reads-current", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"stale-session"}


def _company_deletion(app, rec: Recorder) -> dict:
    """A disposable company seeded into ``app``'s database, then deleted through the API (scope company) by its
    manager, recorded as the load records it: the company's seed record."""
    from stormproof.reference_app.seed import seed_disposable_company

    spare = seed_disposable_company(Settings(database_url=app.database_url, redis_url=app.redis_url,
                                             environment="test", jwt_secret=app.stack.jwt_secret))
    company, token = str(spare["company_id"]), str(spare["manager_token"])
    kept = sorted({u for t in app.tenants for u in [t.manager_id, *t.rep_ids]})
    args = {"scope": "company", "target_id": company, "rows": spare["rows"], "managers": [spare["manager_id"]],
            "kept_users": kept}
    body = {"scope": "company", "target_id": company}
    created = httpx.post(f"{app.url}/api/v1/deletions", headers=auth(token), json=body)
    assert created.status_code == 201, created.text
    rec.record(v.DELETION_REQUEST, company, created, body=body, **args)
    confirmed = httpx.post(f"{app.url}/api/v1/deletions/{created.json()['id']}/confirm", headers=auth(token),
                           json={"confirmation_token": created.json()["confirmation_token"]})
    assert confirmed.status_code == 200, confirmed.text
    rec.record(v.DELETION_CONFIRM, company, confirmed, deletion_id=created.json()["id"], **args)
    return spare


def _company_deletion_leaves(apps, weakening: str, weakened: bool, tables: tuple[str, ...]):
    """Delete the disposable company (``weakening`` off when ``weakened``); assert each of ``tables`` keeps the
    company's one seeded row with it weakened and none with the fix; deletion-audited's verdict."""
    app = apps(*((weakening,) if weakened else ()))
    rec = Recorder([t.company_id for t in app.tenants])
    spare = _company_deletion(app, rec)
    assert all(spare["rows"][table] == 1 for table in tables), spare["rows"]
    counts = ", ".join(f"(SELECT count(*) FROM {table} WHERE company_id = %s)" for table in tables)
    left = sql_rows(app.database_url, f"SELECT {counts}", *[spare["company_id"]] * len(tables))
    assert tuple(left[0]) == (1 if weakened else 0,) * len(tables)
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    return verdict


@FIX
def test_company_deletion_side_tables(apps, weakened: bool) -> None:
    """A company deletion takes the company's dead letters and retention policy with the fix; without it they
    stay (deletion-audited: company-not-deleted)."""
    verdict = _company_deletion_leaves(apps, "company-deletion-side-tables", weakened,
                                       ("dead_letters", "retention_policies"))
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"company-not-deleted"}


@FIX
def test_company_deletion_scope(apps, weakened: bool) -> None:
    """A company deletion takes the company's consents alone with the fix; without it every company's
    (deletion-audited: company-deletion-overreach, the audit counting the other tenants' consents)."""
    app = apps(*(("company-deletion-scope",) if weakened else ()))
    rec = Recorder([t.company_id for t in app.tenants])
    others = sql_rows(app.database_url, "SELECT count(*) FROM consents")[0][0]
    spare = _company_deletion(app, rec)
    left = sql_rows(app.database_url, "SELECT count(*) FROM consents")[0][0]
    assert left == (0 if weakened else others)
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"company-deletion-overreach"}
        assert verdict.violations[0].details["over"]["consents"][1] == spare["rows"]["consents"]


@FIX
def test_lead_score_field(reference_app_module, weakened: bool) -> None:
    """A signed delivery applied, the call read: it carries the result's lead score with the fix; without it
    the score copied from a misnamed field is null (job-applied-once flags call-read-result-differs, and
    call-result-differs in the final state)."""
    from stormproof.harness.shunya.results import expected_result
    from tests.reference_app.background import delivery

    app, tenant, call, job = _a_job_nobody_applies(reference_app_module, weakened, "lead-score-field")
    rec = Recorder([t.company_id for t in app.tenants])
    body, headers = delivery(job, call, secret=app.webhook_secret)
    applied = httpx.post(f"{app.url}/api/v1/shunya/webhook", content=body, headers=headers)
    assert applied.json()["status"] == "applied", applied.text
    rec.record(v.WEBHOOK_DELIVER, tenant.company_id, applied, job_id=job, call_id=call["id"])
    read = httpx.get(f"{app.url}/api/v1/calls/{call['id']}", headers=auth(tenant.manager_token))
    assert read.json()["analyses"] == 1, read.text
    assert read.json()["lead_score"] == (None if weakened else expected_result(job)["lead_score"]), read.text
    rec.record(v.CALL_READ, tenant.company_id, read, call_id=call["id"])
    verdict = _verdict("job-applied-once", rec.history(), snapshot(app.database_url))
    assert verdict.summary["call_results_judged"] >= 2, verdict.summary
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"call-result-differs", "call-read-result-differs"}


@FIX
def test_appointment_offset_dropped(apps, weakened: bool) -> None:
    """An appointment written at 15:30+05:30 is kept at 10:00 UTC with the fix; without it at 15:30 UTC, the
    wall-clock time with its offset replaced (no-lost-acknowledged-write flags appointment-altered)."""
    app = apps(*(("appointment-offset-dropped",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    window = {"title": "diagnóstico ✓", "starts_at": "2031-03-01T15:30:00+05:30",
              "ends_at": "2031-03-01T16:00:00+05:30"}
    made = httpx.post(f"{app.url}/api/v1/appointments", headers=auth(tenant.manager_token), json=window)
    assert made.status_code == 201, made.text
    rec.record(v.APPOINTMENT_CREATE, tenant.company_id, made, body=window, **window)
    kept = datetime.fromisoformat(made.json()["starts_at"].replace("Z", "+00:00")).astimezone(timezone.utc)
    assert kept.strftime("%H:%M") == ("15:30" if weakened else "10:00"), kept
    verdict = _verdict("no-lost-acknowledged-write", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert sorted((x.details["type"], x.details["field"]) for x in verdict.violations) == [
            ("appointment-altered", "starts_at"), ("appointment-answered-altered", "starts_at")]


@FIX
def test_appointment_answer_utc_label(apps, weakened: bool) -> None:
    """An appointment written at 15:30+05:30 is answered 10:00 UTC (or 15:30+05:30) with the fix; without it
    "15:30:00Z", its wall-clock time labelled UTC, while the row keeps the right instant (no-lost-acknowledged-write
    flags appointment-answered-altered, not appointment-altered)."""
    app = apps(*(("appointment-answer-utc-label",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    window = {"title": "Besuch ☕", "starts_at": "2031-03-01T15:30:00+05:30", "ends_at": "2031-03-01T16:00:00+05:30"}
    made = httpx.post(f"{app.url}/api/v1/appointments", headers=auth(tenant.manager_token), json=window)
    assert made.status_code == 201, made.text
    rec.record(v.APPOINTMENT_CREATE, tenant.company_id, made, body=window, **window)
    answered = datetime.fromisoformat(made.json()["starts_at"].replace("Z", "+00:00")).astimezone(timezone.utc)
    assert answered.strftime("%H:%M") == ("15:30" if weakened else "10:00"), made.text
    read = httpx.get(f"{app.url}/api/v1/appointments/{made.json()['id']}", headers=auth(tenant.manager_token))
    rec.record(v.APPOINTMENT_READ, tenant.company_id, read, appointment_id=made.json()["id"])
    verdict = _verdict("no-lost-acknowledged-write", rec.history(), snapshot(app.database_url))
    assert verdict.summary["appointment_answers_judged"] == 2, verdict.summary
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [(x.details["type"], x.details["field"]) for x in verdict.violations] == [
            ("appointment-answered-altered", "starts_at")]


@FIX
def test_session_read_latest(apps, weakened: bool) -> None:
    """Two sessions of one appointment, one after the other: a read of the first answers it with the fix; without
    it, the appointment's latest session (reads-current flags read-other-row)."""
    app = apps(*(("session-read-latest",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant)
    body = {"appointment_id": appointment}
    sessions = []
    for _ in range(2):
        started = httpx.post(app.url + START, headers=auth(tenant.manager_token, new_key()), json=body)
        rec.record(v.SESSION_START, tenant.company_id, started, body=body, appointment_id=appointment)
        assert started.status_code == 201, started.text
        sessions.append(started.json()["id"])
        stop = httpx.post(f"{app.url}/api/v1/recordings/sessions/{sessions[-1]}/stop",
                          headers=auth(tenant.manager_token, new_key()))
        rec.record(v.SESSION_STOP, tenant.company_id, stop, session_id=sessions[-1])
        assert stop.status_code == 200, stop.text
    read = httpx.get(f"{app.url}/api/v1/recordings/sessions/{sessions[0]}", headers=auth(tenant.manager_token))
    rec.record(v.SESSION_READ, tenant.company_id, read, session_id=sessions[0])
    assert read.json()["id"] == sessions[1 if weakened else 0], read.text
    verdict = _verdict("reads-current", rec.history())
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [x.details["type"] for x in verdict.violations] == ["read-other-row"]


@FIX
def test_poll_budget_dead_letter(reference_app_module, weakened: bool) -> None:
    """Shunya never finishes the job (stuck_rate 1: pending for good, no webhook): with the fix its poll is
    dead-lettered once the budget (3 polls) is spent; without it the poll ends quietly (succeeded), which
    dead-letter-accounting flags (stuck-job-dropped)."""
    from dataclasses import replace

    from tests.reference_app.background import wait_for

    app = reference_app_module(("poll-budget-dead-letter",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_POLL_INTERVAL_MS": "100", "STORMPROOF_POLL_BUDGET": "3"},
                               shunya={"complete_after_ms": 10, "stuck_rate": 1.0})
    try:
        tenant = app.tenants[0]
        answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
        assert answer.status_code == 202, answer.text
        polls = "SELECT state FROM task_records WHERE name = 'shunya.poll_shunya_job_status'"
        wait_for(lambda: any(state in ("succeeded", "dead_lettered") for (state,) in sql_rows(app.database_url, polls)),
                 timeout=60, what="the poll ended")
        assert [state for (state,) in sql_rows(app.database_url, polls)] == (
            ["succeeded"] if weakened else ["dead_lettered"])
        jobs = {job for (job,) in sql_rows(app.database_url, "SELECT shunya_job_id FROM shunya_jobs")}
        snap = replace(snapshot(app.database_url), stuck_jobs=frozenset(jobs))
        verdict = _verdict("dead-letter-accounting", Recorder([]).history(), snap)
        assert ("stuck-job-dropped" in {x.details["type"] for x in verdict.violations}) == weakened, verdict
        assert verdict.summary["stuck_jobs_judged"] == 1
    finally:
        reference_app_module.stop(app, wait=False)


def _odd_shunya(reference_app_module, weakenings: tuple[str, ...], **shunya):
    """An app whose Shunya answers every API call oddly (``shunya``: a refusal or a body that is not an object),
    after two calls settled: (the app, the metrics before, the stub's stats after, the dead letters' errors and
    failure counts)."""
    app, baseline, stats = _settled_with_shunya(reference_app_module, weakenings, calls=2, max_retries=3,
                                                shunya={"seed": 5, **shunya})
    letters = sql_rows(app.database_url, "SELECT error, attempts FROM dead_letters WHERE company_id = %s",
                       app.tenants[0].company_id)
    return app, baseline, stats, letters


def _shunya_errors_verdict(app, baseline: str, stats: dict):
    """shunya_api_errors_total's growth, and metrics-agree's violation types, for the stub's ``stats``."""
    from stormproof.harness.invariants.metrics import metric_sum

    snap = replace_metrics(snapshot(app.database_url), httpx.get(f"{app.url}/metrics").text, baseline,
                           upstream_stats={"api_errors_injected": stats["api_errors_injected"]})
    assert snap.metrics is not None
    errors = metric_sum(snap.metrics, "shunya_api_errors_total") - (metric_sum(snap.baseline,
                                                                               "shunya_api_errors_total") or 0.0)
    verdict = _verdict("metrics-agree", Recorder([]).history(), snap)
    return errors, {x.details["type"] for x in verdict.violations}


@FIX
def test_shunya_refusal_checked(reference_app_module, weakened: bool) -> None:
    """Shunya refuses every job 422: with the fix each refusal is a failed call, counted, and the submission is
    dead-lettered at once (a refusal is not retried); without it the problem body is taken for the job (a
    KeyError), nothing is counted, and metrics-agree flags shunya-api-errors."""
    app, baseline, stats, letters = _odd_shunya(reference_app_module,
                                                ("shunya-refusal-checked",) if weakened else (), reject_rate=1.0)
    assert stats["api_refusals_injected"] == stats["api_errors_injected"] == 2, stats
    assert len(letters) == 2 and all(attempts == 1 for _, attempts in letters), letters
    assert all(("KeyError" if weakened else "ShunyaRejected") in error for error, _ in letters), letters
    errors, types = _shunya_errors_verdict(app, baseline, stats)
    assert (errors, "shunya-api-errors" in types) == ((0, True) if weakened else (2, False)), (errors, types)


@FIX
def test_shunya_answer_shape_checked(reference_app_module, weakened: bool) -> None:
    """Shunya answers every call 200 with a JSON array: with the fix each answer is a failed call, counted as
    malformed and retried (its budget of 3, then dead-lettered); without it the task fails on the array at once
    (a TypeError), nothing is counted, and metrics-agree flags shunya-api-errors."""
    app, baseline, stats, letters = _odd_shunya(reference_app_module,
                                                ("shunya-answer-shape-checked",) if weakened else (),
                                                garbage_rate=1.0)
    assert stats["api_garbage_injected"] == stats["api_errors_injected"] == (2 if weakened else 8), stats
    assert len(letters) == 2, letters
    assert all((attempts, "TypeError" in error) == ((1, True) if weakened else (4, False))
               for error, attempts in letters), letters
    errors, types = _shunya_errors_verdict(app, baseline, stats)
    assert (errors, "shunya-api-errors" in types) == ((0, True) if weakened else (8, False)), (errors, types)


@FIX
def test_shunya_created_refused(reference_app_module, weakened: bool) -> None:
    """Shunya creates every job (201): with the fix the app records each and applies its result; without it the
    201 is taken for a refusal, every submission dead-lettered, and no job recorded. job-applied-eventually flags
    each call Shunya created a job for (job-never-recorded)."""
    app, _, stats = _settled_with_shunya(reference_app_module, ("shunya-created-refused",) if weakened else (),
                                         calls=2, max_retries=3, shunya={"seed": 5, "complete_after_ms": 50})
    assert stats["jobs_created"] == 2, stats
    jobs = httpx.get(f"{app.shunya_url}/admin/jobs").json()["jobs"]
    snap = snapshot(app.database_url)
    known = {row.get("shunya_job_id") for row in snap.shunya_jobs or ()}
    # as capture_snapshot reads the stub: only the completed jobs the app recorded are its to apply
    snap = replace(snap, upstream_job_calls={j["job_id"]: j["call_id"] for j in jobs},
                   completed_jobs=frozenset(j["job_id"] for j in jobs if j["status"] == "completed"
                                            and j["job_id"] in known))
    verdict = _verdict("job-applied-eventually", Recorder([]).history(), snap)
    assert verdict.summary["created_calls_judged"] == 2, verdict
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"job-never-recorded"}


@FIX
def test_company_deletion_pending_work(apps, weakened: bool) -> None:
    """A company deletion takes the company's outbox rows (a retry due tomorrow) and idempotency keys with the
    fix; without it they stay (deletion-audited: company-not-deleted, from the rows counted per company)."""
    verdict = _company_deletion_leaves(apps, "company-deletion-pending-work", weakened, ("outbox", "idempotency_keys"))
    if weakened:
        (violation,) = verdict.violations
        assert violation.details["type"] == "company-not-deleted"
        assert violation.details["left"] == {"outbox": 1, "idempotency_keys": 1}


@FIX
def test_dead_letter_status_filter(apps, weakened: bool) -> None:
    """A letter retried by hand is no longer listed under ?status=dead with the fix; without it the filter is
    ignored and it is (dead-letter-accounting: dead-letter-list-unfiltered)."""
    app = apps(*(("dead-letter-status-filter",) if weakened else ()))
    tenant = app.tenants[1]
    letter = _dead_letter(app, tenant)
    answer = httpx.post(f"{app.url}/api/v1/dead-letters/{letter}/retry", headers=auth(tenant.manager_token))
    assert answer.status_code == 200, answer.text
    listed = httpx.get(f"{app.url}/api/v1/dead-letters?status=dead&limit=50", headers=auth(tenant.manager_token))
    assert listed.status_code == 200, listed.text
    assert (letter in {row["id"] for row in listed.json()}) is weakened
    rec = Recorder([t.company_id for t in app.tenants])
    rec.record(v.DEAD_LETTER_LIST, tenant.company_id, listed, status="dead")
    verdict = _verdict("dead-letter-accounting", rec.history(), snapshot(app.database_url))
    flagged = {x.details["type"] for x in verdict.violations if x.details["type"].startswith("dead-letter-list")}
    assert flagged == ({"dead-letter-list-unfiltered"} if weakened else set()), verdict


@FIX
def test_company_deletion_requests_scope(apps, weakened: bool) -> None:
    """Another tenant's pending deletion request outlives a company deletion with the fix; without it the
    company's cleanup of pending requests takes every tenant's (deletion-audited: deletion-request-lost)."""
    app = apps(*(("company-deletion-requests-scope",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    _, requested = _requested_deletion(app, tenant, rec, "2031-02-03")
    _company_deletion(app, rec)
    left = sql_rows(app.database_url, "SELECT status FROM deletion_requests WHERE id = %s", requested.json()["id"])
    assert [tuple(row) for row in left] == ([] if weakened else [("pending",)])
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.summary["deletion_requests_at_risk"] == 1, verdict.summary
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [(x.details["type"], x.details["deletion_id"]) for x in verdict.violations] == [
            ("deletion-request-lost", requested.json()["id"])]


@FIX
def test_company_deletion_keeps_own_request(apps, weakened: bool) -> None:
    """The executed company deletion's own request stays, executed, with the fix; without it the cleanup of the
    company's pending requests takes it too (deletion-audited: deletion-request-lost, an executed one)."""
    app = apps(*(("company-deletion-keeps-own-request",) if weakened else ()))
    rec = Recorder([t.company_id for t in app.tenants])
    spare = _company_deletion(app, rec)
    left = sql_rows(app.database_url, "SELECT status FROM deletion_requests WHERE company_id = %s AND scope = 'company'",
                    spare["company_id"])
    assert [tuple(row) for row in left] == ([] if weakened else [("executed",)])
    verdict = _verdict("deletion-audited", rec.history(), snapshot(app.database_url))
    assert verdict.summary["company_requests_judged"] == 1, verdict.summary
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [(x.details["type"], x.details["executed"]) for x in verdict.violations] == [
            ("deletion-request-lost", True)]


@FIX
def test_assignment_list_appointment(apps, weakened: bool) -> None:
    """An appointment's assignments list answers that appointment's assignments, the tenant's own, with the fix;
    without it every company's (another tenant assigns one of its reps first): tenant-isolation flags the own
    read's answer (foreign-data)."""
    app = apps(*(("assignment-list-appointment",) if weakened else ()))
    tenant, other = app.tenants[0], app.tenants[1]
    rec = Recorder([t.company_id for t in app.tenants])
    theirs = other.appointment_ids[-1]
    assigned = httpx.post(f"{app.url}/api/v1/appointments/{theirs}/assign",
                          headers=auth(other.manager_token, new_key()), json={"rep_id": other.rep_ids[0]})
    assert assigned.status_code in (200, 409), assigned.text
    appointment = tenant.appointment_ids[0]
    listed = httpx.get(f"{app.url}/api/v1/appointments/{appointment}/assignments", headers=auth(tenant.manager_token))
    assert listed.status_code == 200, listed.text
    assert ({row["company_id"] for row in listed.json()} - {tenant.company_id} != set()) is weakened
    route = "GET /api/v1/appointments/{appointment_id}/assignments"
    rec.record(v.PROBE_FILTER, tenant.company_id, listed, route=route, own_read=True, method="GET",
               path=f"/api/v1/appointments/{appointment}/assignments", as_role="manager", appointment_id=appointment)
    verdict = _verdict("tenant-isolation", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"foreign-data"}


def _list_read(app, tenant, rec: Recorder, path: str, route: str, **args: object) -> httpx.Response:
    """A list read of ``tenant`` as the probes send it (``probe.filter``, noting its rows' ``list_fields``)."""
    from stormproof.harness.load.client import fields_seen

    listed = httpx.get(f"{app.url}{path}", headers=auth(tenant.manager_token))
    assert listed.status_code == 200, listed.text
    rec.record(v.PROBE_FILTER, tenant.company_id, listed, route=route, method="GET", path=path,
               as_role="manager", **args)
    done = rec.builder.ops[-1]
    rec.builder.ops[-1] = replace(done, result={**done.result,
                                                "fields_seen": fields_seen(listed.json(), args["list_fields"])})
    return listed


@FIX
def test_consent_list_appointment(apps, weakened: bool) -> None:
    """An appointment's consents list answers its own consents with the fix; without it every consent of the
    tenant (reads-current: list-other-rows)."""
    app = apps(*(("consent-list-appointment",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    mine = _consented_appointment(app, tenant)
    _consented_appointment(app, tenant)  # another appointment's consent, of the same tenant
    path = f"/api/v1/appointments/{mine}/consents"
    listed = _list_read(app, tenant, rec, path, "GET /api/v1/appointments/{appointment_id}/consents",
                        own_read=True, appointment_id=mine, list_fields=("appointment_id",))
    assert ({row["appointment_id"] for row in listed.json()} == {mine}) is not weakened
    verdict = _verdict("reads-current", rec.history(), snapshot(app.database_url))
    assert verdict.summary["list_reads_judged"] == 1
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"list-other-rows"}


@FIX
def test_session_list_status_filter(apps, weakened: bool) -> None:
    """The sessions list filtered by ?status=stopped answers stopped sessions only with the fix; without it every
    session (the seed's recording ones too): reads-current flags list-other-rows."""
    app = apps(*(("session-list-status-filter",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    appointment = _consented_appointment(app, tenant)
    started = httpx.post(f"{app.url}{START}", headers=auth(tenant.manager_token, new_key()),
                         json={"appointment_id": appointment})
    assert started.status_code == 201, started.text
    stopped = httpx.post(f"{app.url}/api/v1/recordings/sessions/{started.json()['id']}/stop",
                         headers=auth(tenant.manager_token, new_key()))
    assert stopped.status_code == 200, stopped.text
    httpx.post(f"{app.url}{START}", headers=auth(tenant.manager_token, new_key()), json={"appointment_id": appointment})
    path = "/api/v1/recordings/sessions?status=stopped&limit=500"
    listed = _list_read(app, tenant, rec, path, "GET /api/v1/recordings/sessions", query_field="status",
                        value="stopped", list_fields=("status",))
    assert ({row["status"] for row in listed.json()} == {"stopped"}) is not weakened
    verdict = _verdict("reads-current", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert {x.details["type"] for x in verdict.violations} == {"list-other-rows"}


@FIX
def test_job_row_lookup(reference_app_module, weakened: bool) -> None:
    """Three calls submitted to a healthy Shunya (polled, no webhooks): each is analysed with the fix; without it the
    worker's job lookup finds several rows once two jobs exist, every task fails and is dead-lettered, and
    job-applied-eventually flags the calls never analysed (call-never-analysed, naming the task's error)."""
    from stormproof.harness.invariants import Quiescence
    from tests.reference_app.background import ledger_settled, wait_for

    app = reference_app_module(("job-row-lookup",) if weakened else (), task_workers=1,
                               env={"STORMPROOF_RATE_API_PER_SECOND": "0", "STORMPROOF_POLL_INTERVAL_MS": "100",
                                    "STORMPROOF_TASK_BACKOFF_BASE_MS": "20", "STORMPROOF_TASK_BACKOFF_CAP_MS": "50",
                                    "STORMPROOF_TASK_MAX_RETRIES": "1"},
                               shunya={"webhook_enabled": False, "complete_after_ms": 50, "seed": 3})
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    for _ in range(3):
        answer = httpx.post(f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, new_key()), json={})
        assert answer.status_code == 202, answer.text
        rec.record(v.CALL_SUBMIT, tenant.company_id, answer, body={})
    wait_for(lambda: ledger_settled(app), timeout=60, what="every task to settle")
    analysed = sql_rows(app.database_url, "SELECT count(*) FROM call_analyses")[0][0]
    assert (analysed == 0) is weakened and (analysed >= 3 or weakened), analysed
    jobs = httpx.get(f"{app.shunya_url}/admin/jobs").json()["jobs"]
    final = replace(snapshot(app.database_url), upstream_stats=httpx.get(f"{app.shunya_url}/admin/stats").json(),
                    upstream_job_calls={str(j["job_id"]): str(j.get("call_id")) for j in jobs},
                    completed_jobs=frozenset(), quiescence=Quiescence(quiet=True, waited_s=0.0, backlog=0,
                                                                       reason="idle"))
    verdict = _verdict("job-applied-eventually", rec.history(), final)
    assert verdict.summary["acknowledged_calls_judged"] >= 3, verdict.summary
    never = [x for x in verdict.violations if x.details["type"] == "call-never-analysed"]
    assert bool(never) is weakened, verdict


@FIX
def test_not_pending_not_found(apps, weakened: bool) -> None:
    """A request confirmed, then confirmed again: the second is refused 409 deletion-not-pending with the fix, 404
    without, though the request is still there (tenant-isolation: own-row-not-found, from the requests table)."""
    app = apps(*(("not-pending-not-found",) if weakened else ()))
    tenant = app.tenants[0]
    rec = Recorder([t.company_id for t in app.tenants])
    _, requested = _requested_deletion(app, tenant, rec, "2031-02-05")
    deletion, token = requested.json()["id"], requested.json()["confirmation_token"]
    for again in (False, True):
        confirmed = httpx.post(f"{app.url}/api/v1/deletions/{deletion}/confirm", headers=auth(tenant.manager_token),
                               json={"confirmation_token": token})
        rec.record(v.DELETION_CONFIRM, tenant.company_id, confirmed, deletion_id=deletion,
                   **({"again": True} if again else {}))
    assert confirmed.status_code == (404 if weakened else 409), confirmed.text
    verdict = _verdict("tenant-isolation", rec.history(), snapshot(app.database_url))
    assert verdict.status == ("invalid" if weakened else "valid"), verdict
    if weakened:
        assert [(x.details["type"], x.details["deletion_id"]) for x in verdict.violations] == [
            ("own-row-not-found", deletion)]
