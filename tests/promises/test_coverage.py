"""Promise coverage: counters, "not exercised" instead of a vacuous pass, and coverage in result.json and the report."""

from __future__ import annotations

import json
from pathlib import Path

from stormproof.harness.history import History
from stormproof.harness.history import vocabulary as v
from stormproof.harness.invariants import Snapshot, Verdict, check_all
from stormproof.harness.promises import PROMISES, coverage
from stormproof.harness.promises import counting as c
from stormproof.harness.promises.run import NOT_EXERCISED, coverage_entries, mark_not_exercised, run_coverage
from stormproof.harness.report import load_result, schema_path
from tests.invariants.builders import HistoryBuilder
from tests.report.runs import make_run


def _starts(*uses: tuple[float, float, str, str, str], status: int = 201) -> History:
    """Session starts: (start ms, end ms, tenant, key, payload fingerprint)."""
    b = HistoryBuilder()
    for n, (start, end, tenant, key, fp) in enumerate(uses):
        b.call(v.SESSION_START, start, end, status, process=f"p{n}", tenant=tenant, result={"id": f"s{n}"},
               appointment_id="a1", idempotency_key=key, payload_fp=fp)
    return b.build()


def test_key_counters_count_the_situation_not_the_operation() -> None:
    history = _starts((0, 10, "c1", "k1", "x"), (20, 30, "c1", "k1", "x"), (25, 40, "c1", "k1", "y"),
                      (50, 60, "c2", "k1", "x"), (70, 80, "c1", "k2", "x"))
    ops = (v.SESSION_START,)
    assert c.key_repeat(ops)(history) == 1          # the 2nd use of (c1, k1) with x (c2 has its own keys)
    assert c.key_mismatch(ops)(history) == 1        # (c1, k1) used with y after x
    assert c.key_concurrent(ops)(history) == 1      # the y request invoked while the 2nd x one was unanswered
    assert c.key_shared_across_tenants(ops)(history) == 1  # c2 reusing c1's k1
    assert c.key_missing(ops)(history) == 0
    assert c.by_operations(ops)(history) == 5


def test_a_redelivery_and_a_stop_by_another_user_count_only_their_situation() -> None:
    b = HistoryBuilder()
    b.call(v.WEBHOOK_DELIVER, 0, 10, 200, job_id="j1")
    b.call(v.WEBHOOK_DELIVER, 20, 30, 200, job_id="j1")  # the same job again: a duplicate
    b.call(v.WEBHOOK_DELIVER, 40, 50, 401, job_id="j1", bad_signature="none")  # forged: not Shunya's
    b.call(v.WEBHOOK_DELIVER, 60, 70, 404, job_id="j2", superseded=True)
    b.call(v.WEBHOOK_DELIVER, 80, 90, 200, job_id="j1", tenant="c2")  # another tenant's job of that id
    b.call(v.SESSION_START, 100, 110, 201, result={"id": "s1"}, appointment_id="a1", as_user="rep:0")
    b.call(v.SESSION_START, 120, 130, 201, result={"id": "s2"}, appointment_id="a2")
    b.call(v.SESSION_STOP, 140, 150, 200, session_id="s1", as_user="rep:0")  # its starter
    b.call(v.SESSION_STOP, 160, 170, 200, session_id="s1")  # the manager
    b.call(v.LEGACY_STOP, 180, 190, 200, session_id="s2", as_user="rep:1")
    b.call(v.SESSION_STOP, 200, 210, 404, session_id="s9", as_user="rep:1")  # a session nobody saw started
    history = b.build()
    assert c.redelivered((v.WEBHOOK_DELIVER,))(history) == 1
    assert c.stopped_by_another_user(tuple(v.STARTS), tuple(v.STOPS))(history) == 2
    assert c.stopped_again(tuple(v.STOPS))(history) == 1  # the manager's stop of s1, after rep:0's was answered


def test_an_analysed_call_and_a_window_in_another_offset_count_only_their_situation() -> None:
    b = HistoryBuilder()
    b.call(v.WEBHOOK_DELIVER, 0, 10, 200, job_id="j1", result={"status": "applied"})
    b.call(v.WEBHOOK_DELIVER, 20, 30, 200, job_id="j1", result={"status": "duplicate"})
    b.call(v.CALL_READ, 40, 50, 200, call_id="k1", result={"analyses": 1})
    b.call(v.CALL_READ, 60, 70, 200, call_id="k2", result={"analyses": 0})
    b.call(v.APPOINTMENT_CREATE, 80, 90, 201, result={"id": "n1"}, starts_at="2031-03-01T15:30:00+05:30")
    b.call(v.APPOINTMENT_CREATE, 100, 110, 201, result={"id": "n2"}, starts_at="2031-03-01T10:00:00Z")
    history = b.build()
    analysed = c.plus(c.with_result_value((v.WEBHOOK_DELIVER,), "status", "applied"),
                      c.with_result_value((v.CALL_READ,), "analyses", 1))
    assert analysed(history) == 2  # the applied delivery and the read showing one analysis
    assert c.with_arg_matching((v.APPOINTMENT_CREATE,), "starts_at", r"[+-]\d\d:\d\d$")(history) == 1


def test_key_missing_counts_the_missing_key_probes_of_its_route() -> None:
    """The idempotency probe sends the keyless requests (f probe.idempotency, probe missing): counting only
    keyless session.stop ops left B1.key-required.* at 0 in every run."""
    b = HistoryBuilder()
    routes = ("POST /api/v1/recordings/sessions/{session_id}/stop", "POST /api/v1/recordings/sessions/start",
              "POST /api/v1/recordings/sessions/{session_id}/stop")
    for n, (route, probe) in enumerate(zip(routes, ("missing", "missing", "replay"))):
        b.call(v.PROBE_IDEMPOTENCY, 10 * n, 10 * n + 5, 400, route=route, probe=probe, step=1)
    history = b.build()
    assert c.key_missing((v.SESSION_STOP,), "POST /recordings/sessions/{id}/stop")(history) == 1
    assert c.key_missing((v.SESSION_START,), "POST /recordings/sessions/start")(history) == 1
    assert c.key_missing((v.ASSIGN,), "POST /appointments/{id}/assign")(history) == 0
    assert coverage(history)["B1.key-required.session-stop"] == 1


def test_limit_counters_count_refusals_and_tenants_served_beside_them() -> None:
    b = HistoryBuilder()
    b.call(v.APPOINTMENT_READ, 0, 5, 429, tenant="c1", appointment_id="a1")
    b.call(v.APPOINTMENT_READ, 10, 15, 200, tenant="c2", appointment_id="a2")     # served beside c1's 429
    b.call(v.APPOINTMENT_READ, 2000, 2005, 200, tenant="c2", appointment_id="a2")  # another second
    b.call(v.CALL_SUBMIT, 20, 25, 429, tenant="c1")
    b.call(v.CALL_SUBMIT, 1030, 1035, 202, tenant="c1", after_429=1)
    history = b.build()
    counts = coverage(history)
    assert counts["C3.tenant-limited"] == 1
    assert counts["C3.others-served"] == 1
    assert counts["C3.task-limit"] == 1
    assert counts["C3.limit-retryable"] == 1


def test_a_limit_is_exercised_by_the_flood_whatever_the_app_answered() -> None:
    """Five reads in one second at 1/s burst 1: three beyond the allowance, though an app without a limit
    answered them all 200 (counting 429s, its weakened run read 'not exercised' and verify called the cell an
    escape: verify --scenario noisy-tenant, 2026-12-02)."""
    from stormproof.harness.invariants import CheckConfig

    b = HistoryBuilder()
    for n in range(5):
        b.call(v.APPOINTMENT_READ, 100 * n, 100 * n + 5, 200, tenant="c1", appointment_id="a1")
    b.call(v.CALL_SUBMIT, 600, 605, 202, tenant="c1")
    history = b.build()
    config = CheckConfig(rate_limit_per_s=1, rate_limit_burst=1, task_rate_per_s=1, task_rate_burst=1)
    assert coverage(history, config)["C3.tenant-limited"] == 3
    assert coverage(history, config)["C3.task-limit"] == 0  # one submission: within its allowance
    assert coverage(history)["C3.tenant-limited"] == 0      # no limit known: the 429s, of which there are none


def test_probe_route_counts_probes_of_one_route_only() -> None:
    b = HistoryBuilder()
    for n, (method, path) in enumerate((("GET", "/api/v1/appointments/x1"), ("GET", "/api/v1/appointments/x1/consents"),
                                        ("POST", "/api/v1/appointments/x2/assign"), ("GET", "/api/v1/reps/r1"))):
        b.call(v.PROBE, 10 * n, 10 * n + 5, 404, method=method, path=path, target_tenant="c2", target_id="x")
    history = b.build()
    assert c.probe_route("GET", "/api/v1/appointments/{id}")(history) == 1
    assert c.probe_route("GET", "/api/v1/appointments/{id}/consents")(history) == 1
    assert c.probe_route("POST", "/api/v1/appointments/{id}/assign")(history) == 1
    assert c.probe_route("POST", "/api/v1/appointments/{id}")(history) == 0


def test_consent_promises_count_the_consent_probes_not_every_start() -> None:
    """A start or call on a consented appointment puts no consent promise at risk: counting every start showed
    F3.consent-every-route exercised in runs that never processed an appointment without consent."""
    b = HistoryBuilder()
    b.call(v.SESSION_START, 0, 5, 201, appointment_id="a1", idempotency_key="k1")
    b.call(v.LEGACY_START, 10, 15, 201, appointment_id="a1")
    b.call(v.CALL_SUBMIT, 20, 25, 202, appointment_id="a1", idempotency_key="k2")
    history = b.build()
    counts = coverage(history)
    for promise in ("F3.consent-before-recording", "F3.consent-before-analysis", "F3.consent-every-route"):
        assert counts[promise] == 0, promise
    b.call(v.SESSION_START, 30, 35, 409, appointment_id="a2", idempotency_key="k3", consent_probe="none")
    b.call(v.LEGACY_START, 40, 45, 409, appointment_id="a3", consent_probe="analysis")
    b.call(v.CALL_SUBMIT, 50, 55, 409, appointment_id="a4", idempotency_key="k4", consent_probe="recording")
    counts = coverage(b.build())
    assert counts["F3.consent-before-recording"] == 2
    assert counts["F3.consent-before-analysis"] == 1
    assert counts["F3.consent-every-route"] == 1


def test_coverage_names_every_promise_and_ignores_unanswered_ops() -> None:
    b = HistoryBuilder()
    b.invoke(v.ASSIGN, 0, appointment_id="a1", rep_id="r1", idempotency_key="k")
    counts = coverage(b.build())
    assert set(counts) == {p.id for p in PROMISES}
    assert counts["A3.one-assignee"] == 0


def test_answers_of_unknown_outcome_exercise_nothing_but_a_replay_after_them() -> None:
    """Every call submission answered 500 (an ``info``: it may or may not have run): the promises about
    Shunya jobs are not exercised, so job-applied-once is unknown, not valid (webhook-poll-storm passed such
    an app, 2026-12-03). A resend after the 500 under the same key still exercises the key's promises."""
    b = HistoryBuilder()
    for n in range(5):
        invoke = b.invoke(v.CALL_SUBMIT, 10 * n, process=f"p{n}", appointment_id="a1", idempotency_key=f"k{n}")
        b.complete(invoke, 10 * n + 5, 500, type="info", error="500 internal-error")
    resend = b.invoke(v.CALL_SUBMIT, 100, process="p0", appointment_id="a1", idempotency_key="k0", resend=1,
                      resend_after="5xx")
    b.complete(resend, 105, 500, type="info", error="500 internal-error")
    history = b.build()
    counts = coverage(history)
    assert counts["A1.job-applied-once"] == counts["B3.one-analysis-per-job"] == 0
    assert counts["B1.error-not-stored"] == 1
    (verdict,) = check_all(history, Snapshot.build({"call_analyses": [], "shunya_jobs": [], "calls": []}),
                           ["job-applied-once"])
    assert verdict.status == "valid"
    (marked,) = run_coverage(history, [verdict])
    assert marked.status == "unknown" and marked.error.startswith(NOT_EXERCISED)


def test_a_checker_whose_promises_were_not_exercised_is_unknown_not_valid() -> None:
    history = _starts((0, 10, "c1", "k1", "x"))
    verdicts = check_all(history, Snapshot.build({"appointment_assignments": [], "appointments": [],
                                                  "recording_sessions": []}),
                         ["single-assignment", "single-active-session"])
    assert [v.status for v in verdicts] == ["valid", "valid"]
    marked = {v.invariant: v for v in run_coverage(history, verdicts)}
    assert marked["single-assignment"].status == "unknown"
    assert marked["single-assignment"].error.startswith(NOT_EXERCISED)
    assert marked["single-active-session"].status == "valid"



def test_a_check_every_run_adds_is_not_unknown_for_a_scenario_that_gave_it_nothing() -> None:
    """reads-current is added to every run: a run with no read (idempotency probes only, say) did not do less
    than its scenario asked, so its verdict stays valid; its promise still shows "not exercised"."""
    history = _starts((0, 10, "c1", "k1", "x"))
    (verdict,) = check_all(history, Snapshot.build({}), ["reads-current"])
    (marked,) = run_coverage(history, [verdict])
    assert marked.status == "valid"
    (asked,) = run_coverage(history, [verdict], asked=["reads-current"])  # a scenario that asked for it
    assert asked.status == "unknown" and asked.error.startswith(NOT_EXERCISED)
    entries = {e["promise"]: e for e in coverage_entries(coverage(history), ["reads-current"])}
    assert entries["brief-5.reads-current"]["status"] == "not exercised"


def test_a_promise_judged_beyond_the_history_counts_what_its_checker_judged() -> None:
    """A1.failed-not-analysed and E1.trace-in-task-logs are judged on the stub's failed jobs and the workers'
    log lines: 192 call submissions exercised nothing of them when no job failed or no log line was read
    (smoke counted both as exercised, 2026-12-03). Their coverage is bounded by the checker's own count."""
    b = HistoryBuilder()
    for n in range(3):
        b.call(v.CALL_SUBMIT, 10 * n, 10 * n + 5, 202, process=f"p{n}", appointment_id="a1",
               idempotency_key=f"k{n}", result={"id": f"c{n}"})
    history = b.build()
    assert coverage(history)["A1.failed-not-analysed"] == 3  # the verdicts not known: the history's count
    jobs = Verdict("job-applied-once", "valid", "safety", summary={"failed_jobs_judged": 0})
    traces = Verdict("trace-echoed", "valid", "safety", summary={"tasks_judged": 3})
    counts = coverage(history, verdicts=[jobs, traces])
    assert counts["A1.failed-not-analysed"] == 0 and counts["E1.trace-in-task-logs"] == 0
    assert counts["A1.job-applied-once"] == 3  # judged on the history: unchanged
    jobs = Verdict("job-applied-once", "valid", "safety", summary={"failed_jobs_judged": 2})
    traces = Verdict("trace-echoed", "invalid", "safety", summary={"task_logs_judged": 7})
    counts = coverage(history, verdicts=[jobs, traces])
    assert counts["A1.failed-not-analysed"] == 2 and counts["E1.trace-in-task-logs"] == 3
    assert coverage(history, verdicts=[])["A1.failed-not-analysed"] == 0  # its checker did not run


def test_an_invalid_verdict_stays_invalid_and_unknown_invariants_are_left_alone() -> None:
    invalid = Verdict("single-assignment", "invalid", "safety")
    outside = Verdict("some-future-checker", "valid", "safety")
    marked = mark_not_exercised([invalid, outside], {})
    assert marked == [invalid, outside]


def test_coverage_entries_say_exercised_and_judged() -> None:
    entries = coverage_entries({"A2.one-active-session": 3}, ["single-active-session"])
    by_id = {e["promise"]: e for e in entries}
    assert by_id["A2.one-active-session"] == {"promise": "A2.one-active-session", "plan_item": "A2",
                                              "invariant": "single-active-session", "count": 3,
                                              "status": "exercised", "judged": True}
    assert by_id["A3.one-assignee"]["status"] == "not exercised" and not by_id["A3.one-assignee"]["judged"]


def test_result_json_and_report_carry_the_coverage(tmp_path: Path) -> None:
    import jsonschema

    run = make_run(tmp_path / "run", scenario="session-start-storm", seed=3, violating=False,
                   started_at="2025-06-03T02:00:00Z")
    data = json.loads((run.run_dir / "result.json").read_text(encoding="utf-8"))
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(data)
    assert [e["promise"] for e in data["coverage"]] == [p.id for p in PROMISES]
    exercised = [e for e in data["coverage"] if e["status"] == "exercised"]
    assert exercised and all(e["count"] > 0 for e in exercised)
    assert load_result(run.run_dir).coverage == tuple(data["coverage"])
    html = (run.run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="coverage"' in html
    assert f"this run covered <strong>{len(exercised)}</strong> of {len(PROMISES)} promises" in html


def test_the_report_shows_a_not_exercised_checker_as_such(tmp_path: Path) -> None:
    from stormproof.harness.report import build_result
    from stormproof.harness.report.html import render_report
    from stormproof.harness.report.result import load_result as load

    run = make_run(tmp_path / "run", scenario="session-start-storm", seed=4, violating=False,
                   started_at="2025-06-03T02:00:00Z")
    result = load(run.run_dir)
    history = _starts((0, 10, "c1", "k1", "x"))
    verdicts = mark_not_exercised([Verdict("single-assignment", "valid", "safety")], coverage(history))
    rebuilt = build_result(result.scenario, result.run, verdicts, history)
    assert rebuilt.verdict == "error" and rebuilt.overall.unknown == ("single-assignment",)
    html = render_report(rebuilt, history, None)
    assert "not exercised</span>" in html and NOT_EXERCISED in html
