"""A task dropped because every one of its tries met the upstream's 5xx (dead-letter-queue, shunya-outage).

The run's stub fails half of its calls at random: a task runs out of tries only when all three draw a
failure, one time in eight, so a replay on the run's stub settings reproduced 2/5. The run recorded the
answer that failed the task's last try; the replay's stub gives it to every call, and the drop happens on
every replay, never with the dead-letter queue on.
"""

from __future__ import annotations

from pathlib import Path

from stormproof.harness.history import History, Op
from stormproof.harness.reproduce import Replayer, measure, select_case
from stormproof.harness.reproduce.select import RunRecord
from stormproof.harness.reproduce.steps import describe

S = 1_000_000_000
TENANT = "00000000-0000-4000-8000-0000000000c0"
APPOINTMENT = "00000000-0000-4000-8000-0000000000a0"
CALL = "00000000-0000-4000-8000-0000000000b0"
STACK = {"tenants": 1, "task_workers": 1, "worker_concurrency": 2,
         "env": {"STORMPROOF_TASK_MAX_RETRIES": "2", "STORMPROOF_TASK_BACKOFF_BASE_MS": "50",
                 "STORMPROOF_TASK_BACKOFF_CAP_MS": "200"},
         "shunya": {"complete_after_ms": 100, "error_rate": 0.5, "seed": 11}}


def _run(tmp_path: Path, last_error: str | None, weakening: str = "dead-letter-queue", **more: object) -> RunRecord:
    submit = {"appointment_id": APPOINTMENT, "idempotency_key": "k"}
    ops = [Op(0, "invoke", "u1", "call.submit", TENANT, submit, time_ns=S),
           Op(1, "ok", "u1", "call.submit", TENANT, submit, 202, {"id": CALL}, time_ns=S + S // 50, invoke_index=0)]
    details = {"type": "dropped", "task_id": "t1", "task_name": "shunya.submit_job", "company_id": TENANT,
               "state": "dropped", "attempts": 3, **({"last_error": last_error} if last_error else {}), **more}
    result = {"verdicts": [{"invariant": "dead-letter-accounting", "kind": "safety", "status": "invalid",
                            "violations": [{"ops": [0], "details": details}]}],
              "plan": {"weakenings": [weakening], "scenario": {"stack": STACK}}}
    return RunRecord(tmp_path, result, History(ops), [{"company_id": TENANT, "appointment_ids": [APPOINTMENT]}])


def test_the_stub_answers_every_call_as_the_runs_task_last_failed(tmp_path: Path) -> None:
    _, case = select_case(_run(tmp_path, "ShunyaUnavailable: create_job: HTTP 502"), 1)
    assert case.stack["shunya"] == {**STACK["shunya"], "error_rate": 1.0, "error_status": 502}
    assert any("every API call answered 502" in line for line in describe(case))
    # no upstream status in the error (a timeout, or an older run): the run's stub settings as they were
    for error in ("ShunyaTimeout: create_job", None):
        _, case = select_case(_run(tmp_path, error), 1)
        assert case.stack["shunya"] == STACK["shunya"]


def test_the_drop_reproduces_on_every_replay_and_never_with_the_dead_letter_queue(tmp_path: Path) -> None:
    _, case = select_case(_run(tmp_path, "ShunyaUnavailable: create_job: HTTP 503"), 1)
    with Replayer(case) as weak:
        assert measure(weak, case, 3, kind="dropped").reproduced == 3
    with Replayer(case, weakenings=()) as fixed:
        assert measure(fixed, case, 3).reproduced == 0


def _over_budget(tmp_path: Path) -> RunRecord:
    """retry-budget: tried 4 times (budget 3) and then succeeded: three 503s, then an answer."""
    return _run(tmp_path, "ShunyaUnavailable: create_job: HTTP 503", type="over-budget", state="succeeded",
                attempts=4, budget=3, weakening="retry-budget")


def test_a_task_tried_past_its_budget_meets_as_many_failures_as_it_had(tmp_path: Path) -> None:
    _, case = select_case(_over_budget(tmp_path), 1)
    assert case.stack["shunya"] == {**STACK["shunya"], "error_rate": 0.0, "error_first": 3, "error_status": 503}
    assert any("the first 3 API call(s) of each replay answered 503" in line for line in describe(case))
    # two submissions share the stub's failures: each needs its three (retry-budget's run: 0/5 with three)
    from stormproof.harness.reproduce.select import _failing_upstream

    details = _over_budget(tmp_path).result["verdicts"][0]["violations"][0]["details"]
    assert _failing_upstream(STACK, details, tasks=2)["shunya"]["error_first"] == 6


def test_the_retries_past_the_budget_reproduce_on_every_replay_and_never_with_the_budget(tmp_path: Path) -> None:
    _, case = select_case(_over_budget(tmp_path), 1)
    with Replayer(case) as weak:
        assert measure(weak, case, 3, kind="over-budget").reproduced == 3
    with Replayer(case, weakenings=()) as fixed:
        assert measure(fixed, case, 3).reproduced == 0
