"""A replay puts the case's faults on the same links for the same groups, and they matter.

The case is the redis-flap bug in two requests: with the unique index weakened
and the session lock on, two starts of one appointment race only while the
app cannot reach Redis (the lock fails open). Replayed with its fault (the
app's Redis link down during the group) it breaks single-active-session;
with the fault removed, the lock holds and it never does.
"""

from __future__ import annotations

from stormproof.harness.history.vocabulary import FAULT
from stormproof.harness.reproduce import Case, CaseFault, Replayer, Step, measure

APPOINTMENT = "00000000-0000-4000-8000-0000000000a0"
TENANT = "00000000-0000-4000-8000-0000000000c0"

CASE = Case(
    invariant="single-active-session",
    steps=(Step(1, 0, "u1", "session.start", TENANT, {"appointment_id": APPOINTMENT, "idempotency_key": "k1"}),
           Step(2, 0, "u2", "session.start", TENANT, {"appointment_id": APPOINTMENT, "idempotency_key": "k2"})),
    faults=(CaseFault("down", "redis", {}, (0,)),),
    refs={TENANT: "t0", APPOINTMENT: "t0.appointment_ids.0", "k1": "key:0", "k2": "key:1"},
    stack={"tenants": 1, "task_workers": 0, "env": {"STORMPROOF_RACE_DELAY_MS": "100"}},
    weakenings=("session-unique-index",),
    source={"scenario": "redis-flap", "violation": 1},
)


def test_the_fault_is_replayed_around_its_group_and_the_race_needs_it() -> None:
    with Replayer(CASE) as replayer:
        attempt = replayer.attempt()
        ops = list(attempt.history)
        faults = [(op.args["phase"], op.args["target"], op.args["fault"]) for op in ops
                  if op.f == FAULT and op.is_invoke]
        assert faults == [("start", "redis", "down"), ("stop", "redis", "down")]
        # the fault is in place before the group's requests leave and removed after their answers
        start, stop = (op.index for op in ops if op.f == FAULT and op.is_invoke)
        requests = [op.index for op in ops if op.f == "session.start"]
        assert len(requests) == 4 and start < min(requests) and max(requests) < stop
        with_fault = measure(replayer, CASE, 3)
        without = measure(replayer, CASE.with_parts(CASE.steps, ()), 3)
    assert attempt.reproduced or with_fault.reproduced, attempt.verdict
    assert with_fault.reproduced >= 2, with_fault
    assert without.reproduced == 0, without
