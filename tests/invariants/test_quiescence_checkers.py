"""The checkers of background work read how quiescence ended: lost work is invalid, progressing work unknown.

Guards issue 11's false alarms (a slow but healthy system judged invalid because
work was still draining at a fixed cutoff) without letting lost work pass.
"""

from stormproof.harness.invariants import Quiescence, Snapshot, check_all
from tests.invariants.builders import HistoryBuilder

QUIET = Quiescence(True, 4.2)
DRAINING = Quiescence(False, 90.0, backlog=3, reason="not quiet after 90 s: 3 tasks still progressing (bound)",
                      pending=3)
STUCK = Quiescence(False, 8.0, backlog=2, reason="not quiet after 8 s: 2 tasks lost (...)",
                   lost_tasks=frozenset({"t3", "t4"}), pending=0)


def _task(tid: str, state: str) -> dict:
    return {"task_id": tid, "name": "poll", "company_id": "c1", "dedupe_key": None, "state": state, "attempts": 1}


def _check(name: str, **fields: object):
    (verdict,) = check_all(HistoryBuilder().build(), Snapshot(**fields), [name])  # type: ignore[arg-type]
    return verdict


def test_quiet_and_settled_ledger_is_valid() -> None:
    verdict = _check("dead-letter-accounting", task_records=(_task("t1", "succeeded"),), dead_letters=(),
                     quiescence=QUIET)
    assert verdict.status == "valid"
    assert verdict.summary["quiescence"] == {"quiet": True, "waited_s": 4.2, "backlog": 0, "reason": "idle"}


def test_tasks_still_progressing_at_the_bound_are_unknown_never_invalid() -> None:
    records = (_task("t1", "succeeded"), _task("t2", "queued"), _task("t3", "retrying"), _task("t4", "running"))
    verdict = _check("dead-letter-accounting", task_records=records, dead_letters=(), quiescence=DRAINING)
    assert verdict.status == "unknown", verdict
    assert not verdict.violations
    assert "3 tasks may still finish" in (verdict.error or "") and "still progressing" in (verdict.error or "")


def test_lost_tasks_are_violations_even_when_others_progress() -> None:
    records = (_task("t1", "succeeded"), _task("t2", "queued"), _task("t3", "queued"), _task("t4", "retrying"))
    verdict = _check("dead-letter-accounting", task_records=records, dead_letters=(), quiescence=STUCK)
    assert verdict.status == "invalid"
    assert sorted(v.details["task_id"] for v in verdict.violations) == ["t3", "t4"]
    assert {v.details["type"] for v in verdict.violations} == {"lost"}
    # t2 is not lost (a broker message holds it): the run says so as missing evidence, not as a violation.
    assert "1 tasks may still finish" in (verdict.error or "")


def test_dropped_task_is_still_caught_whatever_the_quiescence() -> None:
    """The dead-letter-queue weakening (dropped rows) must stay caught: quiescence does not excuse it."""
    for quiescence in (QUIET, DRAINING, STUCK, None):
        verdict = _check("dead-letter-accounting", task_records=(_task("t9", "dropped"),), dead_letters=(),
                         quiescence=quiescence)
        assert verdict.status == "invalid"
        assert [v.details["type"] for v in verdict.violations] == ["dropped"]


def test_in_flight_after_a_quiet_wait_is_unknown() -> None:
    verdict = _check("dead-letter-accounting", task_records=(_task("t5", "queued"),), dead_letters=(),
                     quiescence=QUIET)
    assert verdict.status == "unknown" and "after the system was seen quiet" in (verdict.error or "")


def _analysis(job: str) -> dict:
    return {"id": f"a-{job}", "company_id": "c1", "call_id": "call1", "shunya_job_id": job, "output_hash": "h",
            "applied_by": "poll"}


def test_unapplied_job_while_work_progresses_is_unknown() -> None:
    verdict = _check("job-applied-eventually", call_analyses=(_analysis("j1"),),
                     completed_jobs=frozenset({"j1", "j2"}), quiescence=DRAINING)
    assert verdict.status == "unknown" and "may still apply" in (verdict.error or "")


def test_unapplied_job_when_nothing_can_apply_it_is_invalid() -> None:
    for quiescence in (QUIET, STUCK):
        verdict = _check("job-applied-eventually", call_analyses=(_analysis("j1"),),
                         completed_jobs=frozenset({"j1", "j2"}), quiescence=quiescence)
        assert verdict.status == "invalid", quiescence
        assert [v.details["shunya_job_id"] for v in verdict.violations] == ["j2"]
    stuck = _check("job-applied-eventually", call_analyses=(), completed_jobs=frozenset({"j2"}), quiescence=STUCK)
    assert "2 tasks were lost" in stuck.violations[0].message


def test_metrics_mismatch_while_work_progresses_is_unknown_and_caught_when_quiet() -> None:
    metrics = {'webhook_dedupe_misses_total{source="poll"}': 3.0, 'idempotency_keys_total{outcome="replay"}': 0.0,
               'recording_sessions_started_total{source="sessions"}': 0.0,
               'shunya_job_failures_total{type="job_failed"}': 0.0, "db_pool_size": 5.0, "db_pool_active": 0.0,
               "db_pool_idle": 2.0, "db_pool_overflow": 0.0, 'celery_queue_depth{queue="shunya"}': 0.0,
               'celery_active_tasks{queue="shunya"}': 0.0}
    fields = dict(metrics=metrics, call_analyses=(_analysis("j1"), _analysis("j2")), recording_sessions=(),
                  shunya_jobs=())
    assert _check("metrics-agree", quiescence=DRAINING, **fields).status == "unknown"
    caught = _check("metrics-agree", quiescence=QUIET, **fields)
    assert caught.status == "invalid" and caught.violations[0].details["type"] == "dedupe-misses"


def test_quiescence_round_trips_through_result_json_form() -> None:
    assert DRAINING.to_dict() == {"quiet": False, "waited_s": 90.0, "backlog": 3,
                                  "reason": "not quiet after 90 s: 3 tasks still progressing (bound)"}
    assert QUIET.summary() == "quiesced in 4.2 s"
    assert DRAINING.summary().startswith("not quiet after 90 s: 3 tasks")
