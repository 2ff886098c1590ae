"""A job whose webhook the run lost to an outage, and which polling then never applied (poll-until-done).

The history cannot hold the stub's webhook: selection adds a ``shunya.deliver`` step for it. That step
must play when the run's stub completed the job (``complete_after_ms`` after the submission, once the
poller had polled it pending) and under the faults in place then (the webhook link down), and the
faults must outlast the stub's retries. Sent at once and with no fault, the webhook applied the job in
every replay: 0/5 against the weakened app.
"""

from __future__ import annotations

from pathlib import Path

from stormproof.harness.history import History, Op
from stormproof.harness.reproduce import Case, CaseFault, Replayer, Step, measure, select_case
from stormproof.harness.reproduce.requests import SHUNYA_DELIVER
from stormproof.harness.reproduce.select import RunRecord
from stormproof.harness.reproduce.steps import describe

S = 1_000_000_000
TENANT = "00000000-0000-4000-8000-0000000000c0"
APPOINTMENT = "00000000-0000-4000-8000-0000000000a0"
CALL = "00000000-0000-4000-8000-0000000000b0"
JOB = "shj_" + "0" * 31 + "1"
STUB = {"complete_after_ms": 3000, "webhook_max_attempts": 2, "webhook_backoff_ms": 200}


def _run(tmp_path: Path) -> RunRecord:
    """A submission at 6 s, the webhook link down from 1.5 s to 15.5 s, the job never applied."""
    submit = {"appointment_id": APPOINTMENT, "idempotency_key": "k"}
    down = {"fault": "down", "target": "webhook", "params": {}}
    ops = [Op(0, "invoke", "nemesis", "fault", None, {**down, "phase": "start"}, time_ns=3 * S // 2),
           Op(1, "ok", "nemesis", "fault", None, {**down, "phase": "start"}, time_ns=3 * S // 2, invoke_index=0),
           Op(2, "invoke", "u1", "call.submit", TENANT, submit, time_ns=6 * S),
           Op(3, "ok", "u1", "call.submit", TENANT, submit, 202, {"id": CALL}, time_ns=6 * S + S // 50,
              invoke_index=2),
           Op(4, "invoke", "nemesis", "fault", None, {**down, "phase": "stop"}, time_ns=31 * S // 2),
           Op(5, "ok", "nemesis", "fault", None, {**down, "phase": "stop"}, time_ns=31 * S // 2, invoke_index=4)]
    violation = {"ops": [2], "details": {"type": "never-applied", "shunya_job_id": JOB, "call_id": CALL,
                                         "deliveries_seen": 0}}
    result = {"verdicts": [{"invariant": "job-applied-eventually", "kind": "liveness", "status": "invalid",
                            "violations": [violation]}],
              "plan": {"weakenings": ["poll-until-done"],
                       "scenario": {"stack": {"task_workers": 1, "shunya": STUB}}}}
    return RunRecord(tmp_path, result, History(ops), [{"company_id": TENANT, "appointment_ids": [APPOINTMENT]}])


def test_the_stubs_webhook_plays_when_the_run_completed_the_job_under_the_faults_then(tmp_path: Path) -> None:
    _, case = select_case(_run(tmp_path), 1)
    (upstream,) = [s for s in case.steps if s.f == SHUNYA_DELIVER]
    (submit,) = [s for s in case.steps if s.f == "call.submit"]
    assert upstream.group > submit.group
    assert upstream.pause_s == 3.0  # complete_after_ms after the job's creation
    (fault,) = case.faults
    assert (fault.fault, fault.target) == ("down", "webhook") and upstream.group in fault.groups
    assert any("after its job was created, when the run's stub completed it" in line for line in describe(case))


def test_no_fault_at_the_completion_none_around_the_webhook(tmp_path: Path) -> None:
    """The outage ended before the stub completed the job: the webhook is replayed with no fault."""
    record = _run(tmp_path)
    record.result["plan"]["scenario"]["stack"]["shunya"] = {**STUB, "complete_after_ms": 12_000}
    _, case = select_case(record, 1)
    (upstream,) = [s for s in case.steps if s.f == SHUNYA_DELIVER]
    assert all(upstream.group not in f.groups for f in case.faults)


CASE = Case(
    invariant="job-applied-eventually",
    steps=(Step(2, 0, "u1", "call.submit", TENANT, {"appointment_id": APPOINTMENT, "idempotency_key": "k"}, 202, "ok"),
           Step(-3, 1, "shunya", SHUNYA_DELIVER, TENANT, {"call_id": CALL}, pause_s=1.0)),
    faults=(CaseFault("down", "webhook", {}, (0, 1)),),
    refs={TENANT: "t0", APPOINTMENT: "t0.appointment_ids.0", CALL: "step:2.id", "k": "key:0"},
    stack={"tenants": 1, "task_workers": 1, "worker_concurrency": 2, "env": {"STORMPROOF_POLL_INTERVAL_MS": "300"},
           "shunya": STUB},
    weakenings=("poll-until-done",),
    source={"scenario": "webhook-outage", "violation": 1, "kind": "never-applied"},
)


def test_the_lost_webhook_stays_lost_and_only_the_weakened_poller_leaves_the_job() -> None:
    with Replayer(CASE) as weak:
        lost = weak.attempt()
        (delivered,) = [op for op in lost.history if op.f == SHUNYA_DELIVER and not op.is_invoke]
        assert delivered.status is None and delivered.error, delivered  # it met the link down too
        rate = measure(weak, CASE, 2)
    assert lost.reproduced and rate.reproduced == 2, (lost.verdict, rate)
    with Replayer(CASE, weakenings=()) as fixed:
        assert measure(fixed, CASE, 2).reproduced == 0


def test_only_the_webhooks_link_faults_meet_the_stubs_delivery(tmp_path: Path) -> None:
    """A worker paused when the run's stub completed the job (pause-past-lock-ttl) is the app's fault, not the
    webhook's: around the delivery step it would stop the worker creating the job the step waits for."""
    record = _run(tmp_path)
    pause = {"fault": "pause", "target": "worker1-pool", "params": {}}
    ops = list(record.history)
    n = len(ops)
    ops += [Op(n, "invoke", "nemesis", "fault", None, {**pause, "phase": "start"}, time_ns=8 * S),
            Op(n + 1, "ok", "nemesis", "fault", None, {**pause, "phase": "start"}, time_ns=8 * S, invoke_index=n),
            Op(n + 2, "invoke", "nemesis", "fault", None, {**pause, "phase": "stop"}, time_ns=10 * S),
            Op(n + 3, "ok", "nemesis", "fault", None, {**pause, "phase": "stop"}, time_ns=10 * S, invoke_index=n + 2)]
    ops.sort(key=lambda op: op.time_ns)
    position = {op.index: i for i, op in enumerate(ops)}
    history = History(Op(position[op.index], op.type, op.process, op.f, op.tenant, op.args, op.status, op.result,
                         op.error, op.time_ns, op.wall, None if op.is_invoke else position[op.invoke_index])
                      for op in ops)
    record.result["verdicts"][0]["violations"][0]["ops"] = [position[2]]
    _, case = select_case(RunRecord(tmp_path, record.result, history, record.tenants), 1)
    (upstream,) = [s for s in case.steps if s.f == SHUNYA_DELIVER]
    assert [f.target for f in case.faults if upstream.group in f.groups] == ["webhook"]
