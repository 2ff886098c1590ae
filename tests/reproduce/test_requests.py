"""A replayed request says what the run's said: a forged webhook stays forged (no stack needed)."""

from __future__ import annotations

import json

import pytest

from stormproof.harness.load.client import CLIENT_IP_HEADERS
from stormproof.harness.reproduce.case import Step
from stormproof.harness.reproduce.requests import ReplayContext, build_request
from stormproof.harness.shunya.forged import BAD_SIGNATURES, INCOMPLETE
from stormproof.harness.shunya.results import expected_result, output_hash
from stormproof.harness.shunya.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

SECRET = "whsec-test"
TENANT = "11111111-2222-3333-4444-555555555555"
JOB = "shj_" + "ab" * 16


def _ctx() -> ReplayContext:
    return ReplayContext(tenants=[], by_company={}, webhook_secret=SECRET, openapi=dict, bodies={}, created_by={})


def _deliver(**extra: str) -> Step:
    args = {"job_id": JOB, "call_id": "c" * 8 + "-0000-0000-0000-" + "0" * 12, "payload_fp": "the-run's", **extra}
    return Step(7, 0, "u1", "webhook.deliver", TENANT, args)


def _signed(headers: dict[str, str], raw: bytes) -> bool:
    return SIGNATURE_HEADER in headers and verify(SECRET, headers[TIMESTAMP_HEADER], raw, headers[SIGNATURE_HEADER])


def test_a_delivery_shunya_signed_is_signed_again_with_the_jobs_result() -> None:
    step = _deliver()
    request = build_request(step, step.args, _ctx())
    assert _signed(dict(request.headers), request.raw_body or b"")
    body = json.loads(request.raw_body or b"{}")
    assert body["result"] == expected_result(JOB)
    assert request.args is not None and request.args["payload_fp"] == output_hash(expected_result(JOB))


@pytest.mark.parametrize("bad", BAD_SIGNATURES)
def test_a_forged_delivery_is_sent_forged_and_recorded_with_what_it_carried(bad: str) -> None:
    """Sent properly signed, a forged delivery is accepted by the fixed app: forged-delivery-accepted, a false
    alarm (webhook-signature's reproducer failed 5/5 with every fix on)."""
    step = _deliver(bad_signature=bad)
    request = build_request(step, step.args, _ctx())
    raw = request.raw_body or b""
    assert not _signed(dict(request.headers), raw)
    body = json.loads(raw)
    assert body["output_hash"] != output_hash(expected_result(JOB))  # a forged result, not the job's
    assert request.args is not None and request.args["payload_fp"] == body["output_hash"]
    assert request.args["bad_signature"] == bad


@pytest.mark.parametrize("missing", INCOMPLETE)
def test_an_incomplete_delivery_is_sent_signed_and_incomplete_again(missing: str) -> None:
    """Sent whole, the replay of an incomplete delivery is applied by the fixed app: the reproducer would pass
    where the run's app took in a completion without its result."""
    step = _deliver(incomplete=missing)
    request = build_request(step, step.args, _ctx())
    raw = request.raw_body or b""
    assert _signed(dict(request.headers), raw)
    body = json.loads(raw)
    assert body["status"] == "completed"
    assert (body["result"] is None) == (missing == "no-result")
    assert (body["output_hash"] is None) == (missing == "no-hash")
    assert request.args is not None and request.args["incomplete"] == missing



def test_a_consent_grant_is_sent_with_the_evidence_and_headers_the_run_recorded() -> None:
    """The checker compares the consent's text, user agent and IP with the recorded args: sent with other
    ones, a correct app's consent is judged altered evidence (a false alarm), and without the spoofed
    X-Forwarded-For an app that trusts it (consent-forwarded-for) cannot show it."""
    args = {"appointment_id": "a" * 8 + "-0000-0000-0000-" + "0" * 12, "scope": "recording",
            "forwarded_for": "203.0.113.7", "user_agent": "stormproof-load/u3",
            "evidence": "agreed, script v4 \u2014 x"}
    step = Step(3, 0, "u3", "consent.grant", TENANT, args)
    request = build_request(step, args, _ctx())
    assert request.body == {"scope": "recording", "evidence": args["evidence"]}
    assert request.headers["X-Forwarded-For"] == "203.0.113.7"
    assert request.headers["User-Agent"] == "stormproof-load/u3"
    assert request.args is None or request.args["evidence"] == args["evidence"]


def test_a_consent_grant_sends_every_client_address_header_the_run_spoofed() -> None:
    """The load spoofs each client-settable address header (``args.client_ips``): an app that takes its evidence
    IP from X-Real-IP or Forwarded shows only when the reproducer sends them all, each with the run's value."""
    spoofed = ["203.0.113.%d" % n for n in range(1, len(CLIENT_IP_HEADERS) + 1)]
    args = {"appointment_id": "a" * 8 + "-0000-0000-0000-" + "0" * 12, "scope": "analysis",
            "client_ips": spoofed, "user_agent": "stormproof-load/u4", "evidence": "agreed"}
    request = build_request(Step(4, 0, "u4", "consent.grant", TENANT, args), args, _ctx())
    sent = {name: request.headers.get(name) for name, _ in CLIENT_IP_HEADERS}
    assert sent == {name: template.format(ip) for (name, template), ip in zip(CLIENT_IP_HEADERS, spoofed)}
    assert sent["Forwarded"] == "for=203.0.113.3" and sent["X-Real-IP"] == "203.0.113.2"


def test_a_traced_request_sends_a_fresh_trace_id_and_records_it() -> None:
    """trace-echoed and the task traces compare the answer's and the tasks' ids with ``args.trace_id``: a replay
    that sent none (or the run's, on every attempt) is judged against an id it never sent."""
    args = {"appointment_id": "a" * 8 + "-0000-0000-0000-" + "0" * 12, "trace_id": "f" * 32, "idempotency_key": "k"}
    step = Step(4, 0, "u1", "call.submit", TENANT, args)
    first, second = (build_request(step, args, _ctx()) for _ in range(2))
    for request in (first, second):
        sent = request.headers["X-Trace-Id"]
        assert sent != "f" * 32 and request.args is not None and request.args["trace_id"] == sent
    assert first.headers["X-Trace-Id"] != second.headers["X-Trace-Id"]


@pytest.mark.parametrize("scenario", ["noisy-tenant", "idempotency-replay-storm", "shunya-outage"])
def test_a_replay_is_judged_with_the_runs_limits_budgets_and_key_ttl(scenario: str) -> None:
    """With the default config the replay's checker knew no rate limit, budget or TTL: rate-limit-per-tenant's
    reproducer was 0/5 (rate-limit-enforced judged nothing), and no key TTL or retry budget could show."""
    from stormproof.harness.plan.run_plan import build_plan
    from stormproof.harness.reproduce.case import Case
    from stormproof.harness.reproduce.replay import check_config_for
    from stormproof.scenarios import load_scenario

    plan = build_plan(load_scenario(scenario))
    run = plan.check_config()
    replay = check_config_for(Case("rate-limit-enforced", (), stack=plan.to_dict()["scenario"]["stack"]))
    for name in ("rate_limit_per_s", "rate_limit_burst", "task_rate_per_s", "task_rate_burst", "task_backoff_ms",
                 "idempotency_ttl_s"):
        assert getattr(replay, name) == getattr(run, name), name
    assert dict(replay.task_try_budget) == dict(run.task_try_budget)
    if scenario == "noisy-tenant":
        assert replay.rate_limit_per_s is not None and replay.task_rate_per_s is not None


@pytest.mark.parametrize("form", ["sp key {}", "sp\tkey-{}", "k{}".ljust(258, "k"), "{}{}{}{}"])
def test_a_fresh_key_keeps_the_run_keys_shape(form: str) -> None:
    """Each attempt draws new keys; a malformed one must stay malformed (a space, a tab, 256 characters and
    more), or the fixed app runs it and the probe expecting 400 reports it ran: a false alarm."""
    from stormproof.harness.reproduce.replay import fresh_key

    original = form.format(*("e3ebbdeb" for _ in range(form.count("{}"))))
    fresh = fresh_key(original)
    assert fresh != original and len(fresh) == len(original)
    assert [c for c in fresh if c not in "0123456789abcdef"] == [c for c in original if c not in "0123456789abcdef"]
    assert fresh_key(original) != fresh


def test_a_retention_run_names_the_rows_of_this_attempts_seed() -> None:
    """The run's old rows do not exist on a fresh stack: named in the replay's history, each reads as a row
    retention deleted, on any app (retention-tenant-scope failed 0/5 with every fix on)."""
    from types import SimpleNamespace

    mine = [{"kind": "call", "id": "n" * 8 + "-0000-0000-0000-" + "0" * 12, "company_id": TENANT, "at": 1.0}]
    other = [{"kind": "appointment", "id": "m" * 8 + "-0000-0000-0000-" + "0" * 12, "company_id": "x", "at": 2.0}]
    ctx = _ctx()
    ctx.tenants = [SimpleNamespace(retention_rows=mine), SimpleNamespace(retention_rows=other)]
    ran = [{"kind": "call", "id": "r" * 8 + "-0000-0000-0000-" + "0" * 12, "company_id": TENANT, "at": 1.0}]
    step = Step(9, 0, "u1", "retention.run", TENANT, {"rows": ran})
    request = build_request(step, step.args, ctx)
    assert request.args is not None and request.args["rows"] == mine + other
    bare = Step(9, 0, "u1", "retention.run", TENANT, {})
    assert "rows" not in (build_request(bare, bare.args, ctx).args or {})


def test_a_deletion_asked_by_the_delete_route_is_replayed_through_it() -> None:
    """The run's DELETE /appointments/{id} (``route`` delete) is sent as a DELETE: sent as POST /deletions, the
    weakened app's direct delete (appointment-delete-direct) could not happen in the replay."""
    target = "a" * 8 + "-0000-0000-0000-" + "0" * 12
    args = {"scope": "appointment", "target_id": target}
    posted = build_request(Step(3, 0, "u1", "deletion.request", TENANT, args), args, _ctx())
    assert (posted.method, posted.path, posted.body) == ("POST", "/api/v1/deletions", args)
    deleted = build_request(Step(4, 0, "u1", "deletion.request", TENANT, {**args, "route": "delete"}),
                            {**args, "route": "delete"}, _ctx())
    assert (deleted.method, deleted.path, deleted.body) == ("DELETE", f"/api/v1/appointments/{target}", None)


def test_a_request_the_load_sent_as_a_rep_is_replayed_as_that_rep() -> None:
    """Sessions are the tenant's: the load stops one user's session as another. Replayed as the manager, a stop
    that an app refused only to another user (session-owner-scope) would pass."""
    from types import SimpleNamespace

    tenant = SimpleNamespace(manager_token="m", rep_tokens=["r0", "r1"])
    ctx = ReplayContext(tenants=[tenant], by_company={TENANT: tenant}, webhook_secret=SECRET, openapi=dict,
                        bodies={}, created_by={})
    sent = {}
    for who in ({}, {"as_user": "rep:1"}, {"as_user": "rep:3"}):
        args = {"session_id": "s1", "idempotency_key": "k", **who}
        request = build_request(Step(3, 0, "u1", "session.stop", TENANT, args), args, ctx)
        sent[who.get("as_user")] = dict(request.headers)["Authorization"]
    assert sent == {None: "Bearer m", "rep:1": "Bearer r1", "rep:3": "Bearer r1"}  # a rep beyond the seed's wraps


def test_an_id_an_answer_makes_is_one_nobody_made_until_that_answer_gives_it() -> None:
    """Never the run's own id: a seeded Shunya stub hands its job ids out again in the same order, so a case
    shrunk to one delivery of the run's job id met a job of an earlier attempt, already applied, and
    "reproduced" a refused duplicate 5/5 that its test, on a fresh stack, did not."""
    from stormproof.harness.reproduce.case import Case
    from stormproof.harness.reproduce.replay import Replayer

    job, call, key = "shj_" + "ab" * 16, "c" * 8 + "-0000-0000-0000-" + "0" * 12, "k" * 32
    case = Case("refusals-explained", (), refs={job: "step:260.shunya_job_id", call: "step:3.id", key: "key:0"})
    fresh = Replayer._translation(case, [])
    assert fresh[job] != job and fresh[job].startswith("shj_") and len(fresh[job]) == len(job)
    assert fresh[call] != call and len(fresh[call]) == len(call)
    assert Replayer._translation(case, [])[job] != fresh[job]  # a new one for every attempt
    assert fresh[key] != key


def test_an_appointment_is_created_with_the_title_and_window_the_run_sent() -> None:
    """no-lost-acknowledged-write compares the row with the recorded title and window: created with others, a
    correct app's appointment is judged altered (a false alarm)."""
    sent = {"title": "diagnóstico ✓", "starts_at": "2031-03-01T15:30:00+05:30", "ends_at": "2031-03-01T16:00:00+05:30"}
    step = Step(3, 0, "u1", "appointment.create", TENANT, {**sent, "payload_fp": "fp"})
    request = build_request(step, step.args, _ctx())
    assert (request.method, request.path) == ("POST", "/api/v1/appointments")
    assert request.body == sent
    old = Step(3, 0, "u1", "appointment.create", TENANT, {"payload_fp": "fp"})  # a history from before
    assert build_request(old, old.args, _ctx()).body["title"] == "reproduce"
