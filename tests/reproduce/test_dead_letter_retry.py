"""A dead letter retried twice (dead-letter-retry-once): the replay sends the manual retries of the run.

dead_letter.retry was not a request a replay could send, so the violation had nothing to replay. The
load retries a letter its tenant lists as dead, else a seeded one (``t0.dead_letter_ids.N``), which a
fresh seed has too: two retries of it sent together are both accepted by the weakened app, and one is
refused 409 with every fix on.
"""

from __future__ import annotations

from pathlib import Path

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import DEAD_LETTER_RETRY
from stormproof.harness.reproduce import Replayer, measure, select_case
from stormproof.harness.reproduce.case import Step
from stormproof.harness.reproduce.requests import ReplayContext, build_request
from stormproof.harness.reproduce.select import RunRecord

TENANT = "00000000-0000-4000-8000-0000000000c0"
LETTER = "00000000-0000-4000-8000-0000000000d0"


def test_a_retry_is_sent_to_the_letters_retry_route_as_the_manager() -> None:
    tenant = type("T", (), {"manager_token": "tok"})()
    ctx = ReplayContext(tenants=[tenant], by_company={TENANT: tenant}, webhook_secret="s", openapi=dict, bodies={},
                        created_by={})
    step = Step(0, 0, "u1", DEAD_LETTER_RETRY, TENANT, {"dead_letter_id": LETTER, "step": 1})
    request = build_request(step, step.args, ctx)
    assert (request.method, request.path) == ("POST", f"/api/v1/dead-letters/{LETTER}/retry")
    assert request.headers["Authorization"] == "Bearer tok"


def _run(tmp_path: Path) -> RunRecord:
    ops: list[Op] = []
    for step in (1, 2):  # sent together: both invoked before either answered
        ops.append(Op(len(ops), "invoke", "u1", DEAD_LETTER_RETRY, TENANT, {"dead_letter_id": LETTER, "step": step},
                      time_ns=10 * step))
    for step in (1, 2):
        ops.append(Op(len(ops), "ok", "u1", DEAD_LETTER_RETRY, TENANT, {"dead_letter_id": LETTER, "step": step},
                      200, {"id": LETTER, "status": "retried"}, time_ns=100 + step, invoke_index=step - 1))
    violation = {"ops": [0, 2, 1, 3], "details": {"type": "dead-letter-retried-twice", "dead_letter_id": LETTER}}
    result = {"verdicts": [{"invariant": "dead-letter-accounting", "kind": "safety", "status": "invalid",
                            "violations": [violation]}],
              "plan": {"weakenings": ["dead-letter-retry-once"],
                       "scenario": {"stack": {"tenants": 1, "task_workers": 1, "worker_concurrency": 2}}}}
    return RunRecord(tmp_path, result, History(ops), [{"company_id": TENANT, "dead_letter_ids": [LETTER]}])


def test_two_retries_of_a_seeded_letter_replay_and_not_with_the_fixes_on(tmp_path: Path) -> None:
    _, case = select_case(_run(tmp_path), 1)
    assert [s.f for s in case.steps] == [DEAD_LETTER_RETRY] * 2 and len(case.groups) == 1
    assert case.refs[LETTER] == "t0.dead_letter_ids.0"
    with Replayer(case) as weak:
        assert measure(weak, case, 3, kind="dead-letter-retried-twice").reproduced == 3
    with Replayer(case, weakenings=()) as fixed:
        assert measure(fixed, case, 3).reproduced == 0
