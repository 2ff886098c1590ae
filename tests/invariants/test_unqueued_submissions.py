"""dead-letter-accounting judges the task that was never written: an acknowledged call whose job has no task.

What an app that publishes its task after the commit does when it dies between the two (the outbox
weakened, the API killed): the call and its job are committed and answered 202, and nothing will ever
submit the job. The ledger is balanced, so only this rule sees it.
"""

from __future__ import annotations

from stormproof.harness.invariants import Snapshot, check_all
from stormproof.harness.invariants.snapshot import Quiescence
from tests.invariants.builders import HistoryBuilder

SUBMIT = "shunya.submit_job"


def _history() -> tuple[HistoryBuilder, dict[str, int]]:
    """Calls k1..k4 acknowledged; k5 refused (409); k6 acknowledged then deleted (no job row left)."""
    b = HistoryBuilder()
    done = {}
    for i, call in enumerate(("k1", "k2", "k3", "k4")):
        _, done[call] = b.call("call.submit", i, i + 1, 202, result={"id": call})
    b.call("call.submit", 4, 5, 409, result={"id": "k5"})
    b.call("call.submit", 5, 6, 202, result={"id": "k6"})
    return b, done


def _task(tid: str, job: str, state: str = "succeeded") -> dict:
    return {"task_id": tid, "name": SUBMIT, "company_id": "c1", "state": state, "attempts": 1,
            "args": {"job_row_id": job, "company_id": "c1"}}


def _job(job: str, call: str, shunya: str | None) -> dict:
    return {"id": job, "call_id": call, "company_id": "c1", "shunya_job_id": shunya, "status": "pending"}


QUIET = Quiescence(True, 3.0)


def _check(b: HistoryBuilder, records: tuple, jobs: tuple, quiescence: Quiescence | None = QUIET):
    snapshot = Snapshot(task_records=records, shunya_jobs=jobs, dead_letters=(), quiescence=quiescence)
    (verdict,) = check_all(b.build(), snapshot, ["dead-letter-accounting"])
    return verdict


def test_every_acknowledged_submission_with_a_task_or_a_submitted_job_passes() -> None:
    b, _ = _history()
    jobs = (_job("j1", "k1", "shj_1"), _job("j2", "k2", None), _job("j3", "k3", "shj_3"), _job("j4", "k4", None),
            _job("j5", "k5", None))  # k5 was refused: nothing promised
    records = (_task("t1", "j1"), _task("t2", "j2"), _task("t4", "j4", "dead_lettered"))  # j3: submitted, no task
    verdict = _check(b, records, jobs)
    assert not [v for v in verdict.violations if v.details["type"] == "submission-never-queued"], verdict.violations
    assert (verdict.summary["submissions_judged"], verdict.summary["submissions_dropped"]) == (4, 0)


def test_an_acknowledged_submission_whose_job_has_no_task_is_caught() -> None:
    b, done = _history()
    jobs = (_job("j1", "k1", "shj_1"), _job("j2", "k2", None), _job("j3", "k3", None), _job("j4", "k4", None))
    records = (_task("t1", "j1"), _task("t4", "j4"))  # j2 and j3 never got a task
    verdict = _check(b, records, jobs)
    assert verdict.status == "invalid"
    found = sorted((v.details["call_id"], v.details["job_id"]) for v in verdict.violations
                   if v.details["type"] == "submission-never-queued")
    assert found == [("k2", "j2"), ("k3", "j3")]
    k2 = next(v for v in verdict.violations if v.details.get("call_id") == "k2")
    assert b.at(done["k2"]) in k2.ops


def test_while_work_may_still_queue_it_the_verdict_is_unknown() -> None:
    b, _ = _history()
    jobs = (_job("j1", "k1", None),)
    busy = Quiescence(False, 60.0, 3, "not quiet after 60 s: 3 tasks still progressing", pending=3)
    verdict = _check(b, (_task("t9", "other"),), jobs, busy)
    assert verdict.status == "unknown"
    assert not verdict.violations
