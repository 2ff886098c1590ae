"""Final-state violations cite the requests behind them, so that `stormproof reproduce` can select them.

task-deduplicated, dead-letter-accounting and job-applied-eventually name a task or a Shunya job, which no
request names; metrics-agree's sessions-started names a counter. Each must cite (``Violation.ops``) the
request that caused the work: by the task's trace id, by a refresh's answer, or by the submission of the
job's call; the starts behind a session counter's mismatch.
"""

from __future__ import annotations

from stormproof.harness.history.vocabulary import CALL_REFRESH, CALL_SUBMIT, SESSION_START
from stormproof.harness.invariants import Quiescence, Snapshot, check_all

from .builders import HistoryBuilder

CALL, JOB_ROW, JOB = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "shj_1"


def _submit(h: HistoryBuilder, at: float, trace: str, call: str = CALL) -> int:
    invoke, _ = h.call(CALL_SUBMIT, at, at + 5, 202, result={"id": call}, appointment_id="a1", trace_id=trace)
    return invoke


def _task(task_id: str, *, trace: str | None, created: float, finished: float | None, state: str = "succeeded",
          attempts: int = 1) -> dict[str, object]:
    return {"task_id": task_id, "name": "shunya.poll_shunya_job_status", "company_id": "c1", "dedupe_key": JOB_ROW,
            "state": state, "attempts": attempts, "created_at": created, "finished_at": finished,
            "args": {"job_row_id": JOB_ROW, "company_id": "c1", "polls": 0}, "trace_id": trace}


_JOBS = [{"id": JOB_ROW, "company_id": "c1", "call_id": CALL, "shunya_job_id": JOB, "status": "completed"}]


def test_a_duplicate_task_cites_the_refresh_and_the_submission_behind_it() -> None:
    h = HistoryBuilder()
    submit = _submit(h, 0, "trace-submit")
    # the refresh's trace id was lost (trace-propagation): its answer's task id leads to it
    refresh, _ = h.call(CALL_REFRESH, 10, 12, 202, result={"task_id": "t2", "deduplicated": False}, call_id=CALL,
                        trace_id="trace-refresh")
    history = h.build()
    snapshot = Snapshot.build({"task_records": [_task("t1", trace="trace-submit", created=1.0, finished=5.0),
                                                _task("t2", trace=None, created=2.0, finished=6.0)],
                               "shunya_jobs": _JOBS})
    (verdict,) = check_all(history, snapshot, ["task-deduplicated"])
    assert verdict.status == "invalid"
    assert verdict.violations[0].ops == tuple(sorted((h.at(submit), h.at(refresh))))


def test_a_dropped_task_cites_its_call_submission_when_its_trace_id_is_lost() -> None:
    h = HistoryBuilder()
    submit = _submit(h, 0, "trace-submit")
    history = h.build()
    snapshot = Snapshot.build({"task_records": [_task("t1", trace=None, created=1.0, finished=2.0, state="dropped")],
                               "shunya_jobs": _JOBS, "dead_letters": []})
    (verdict,) = check_all(history, snapshot, ["dead-letter-accounting"])
    dropped = [v for v in verdict.violations if v.details["type"] == "dropped"]
    assert dropped and dropped[0].ops == (h.at(submit),)


def test_a_job_never_applied_cites_its_call_and_the_submission() -> None:
    h = HistoryBuilder()
    other = _submit(h, 0, "trace-other", call="99999999-9999-4999-8999-999999999999")  # another call's: not cited
    submit = _submit(h, 10, "trace-submit")
    history = h.build()
    snapshot = Snapshot.build({"call_analyses": [], "shunya_jobs": _JOBS}, completed_jobs=[JOB],
                              quiescence=Quiescence(quiet=True, waited_s=0.0))
    (verdict,) = check_all(history, snapshot, ["job-applied-eventually"])
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["call_id"] == CALL
    assert h.at(submit) in violation.ops and h.at(other) not in violation.ops


def test_a_session_counter_counting_refusals_cites_the_start_and_the_refused_one() -> None:
    h = HistoryBuilder()
    other, _ = h.call(SESSION_START, 0, 5, 201, result={"id": "s0"}, appointment_id="a-other")
    made, _ = h.call(SESSION_START, 10, 15, 201, result={"id": "s1"}, appointment_id="a1")
    refused, _ = h.call(SESSION_START, 20, 25, 409, result={"active_session_id": "s1"}, appointment_id="a1")
    history = h.build()
    rows = [{"id": "s0", "company_id": "c1", "appointment_id": "a-other", "status": "active", "source": "sessions"},
            {"id": "s1", "company_id": "c1", "appointment_id": "a1", "status": "active", "source": "sessions"}]
    snapshot = Snapshot.build({"recording_sessions": rows, "call_analyses": []},
                              metrics_text="recording_sessions_started_total{source=\"sessions\"} 3\n"
                                           "webhook_dedupe_misses_total 0\n"
                                           "idempotency_keys_total{outcome=\"replay\"} 0\n")
    (verdict,) = check_all(history, snapshot, ["metrics-agree"])
    (violation,) = [v for v in verdict.violations if v.details["type"] == "sessions-started"]
    assert violation.ops == (h.at(made), h.at(refused))
    assert h.at(other) not in violation.ops


def test_a_dropped_task_says_why_its_last_try_failed() -> None:
    """The replay makes the upstream fail as the run's did (reproduce's ``_failing_upstream``): it needs the error."""
    h = HistoryBuilder()
    _submit(h, 0, "trace-submit")
    row = {**_task("t1", trace="trace-submit", created=1.0, finished=2.0, state="dropped", attempts=3),
           "last_error": "ShunyaUnavailable: create_job: HTTP 503"}
    snapshot = Snapshot.build({"task_records": [row], "shunya_jobs": _JOBS, "dead_letters": []})
    (verdict,) = check_all(h.build(), snapshot, ["dead-letter-accounting"])
    (dropped,) = [v for v in verdict.violations if v.details["type"] == "dropped"]
    assert dropped.details["last_error"] == "ShunyaUnavailable: create_job: HTTP 503"
    assert dropped.details["attempts"] == 3
