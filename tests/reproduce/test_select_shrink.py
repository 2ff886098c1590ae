"""Selection and shrinking on a real recorded history (see conftest: a caught session-start race)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stormproof.harness.history import History, Op
from stormproof.harness.invariants import Snapshot, check_all
from stormproof.harness.reproduce import Case, SelectionError, load_run, numbered_violations, select_case, shrink
from stormproof.harness.reproduce.select import RunRecord
from stormproof.harness.reproduce.steps import describe


def _sub_history(history: History, keep: set[int]) -> History:
    """The ops of the kept invokes and their completions, re-indexed (a history of only those requests)."""
    chosen = [op for op in history if (op.index if op.is_invoke else op.invoke_index) in keep]
    position = {op.index: i for i, op in enumerate(chosen)}
    return History(Op(position[op.index], op.type, op.process, op.f, op.tenant, op.args, op.status, op.result,
                      op.error, op.time_ns, op.wall, None if op.is_invoke else position[op.invoke_index])
                   for op in chosen)


def _violated_on_record(history: History, case: Case) -> bool:
    """The case's invariant, judged on the run's own answers to the case's requests (history view only)."""
    (verdict,) = check_all(_sub_history(history, {s.index for s in case.steps}), Snapshot(recording_sessions=()),
                           [case.invariant])
    return verdict.status == "invalid"


def test_selection_takes_the_named_requests_and_their_resources(race_run: Path) -> None:
    record = load_run(race_run)
    number, case = select_case(record)
    _, violation = numbered_violations(record.result)[number - 1]
    named = {op if record.history[op].is_invoke else record.history[op].invoke_index for op in violation["ops"]}
    indices = {s.index for s in case.steps}
    assert named <= indices
    assert case.invariant == "single-active-session"
    assert set(case.weakenings) == {"session-lock", "session-unique-index"}
    # the run's 30 ms window, met by chance among hundreds of warm requests, is held open for the replay's
    # few fresh ones until two are inside (CI under load: the 30 ms window reproduced 0 of 2 replays)
    env = case.stack["env"]
    assert env["STORMPROOF_RACE_BARRIER"] == "2" and int(env["STORMPROOF_RACE_DELAY_MS"]) >= 300
    assert record.plan["scenario"]["stack"]["env"]["STORMPROOF_RACE_DELAY_MS"] == "30"
    # every id the steps use is either seeded (a tenant ref) or made by a selected step
    for step in case.steps:
        appointment = step.args.get("appointment_id")
        if appointment is not None:
            ref = case.refs[appointment]
            assert ref.startswith("t") or int(ref.split(":")[1].split(".")[0]) in indices, ref
        key = step.args.get("idempotency_key")
        if key is not None:
            assert case.refs[key].startswith("key:")
    # the two acknowledged starts overlapped in the run: they are sent together
    groups = {s.group for s in case.steps if s.index in named}
    assert len(groups) == 1
    # and the case, judged on the run's own answers, still shows the violation
    assert _violated_on_record(record.history, case)


def test_a_stop_brings_the_start_that_made_its_session(race_run: Path) -> None:
    record = load_run(race_run)
    stops = [pair for pair in record.history.pairs_of("session.stop", "legacy.stop")
             if pair[1] is not None and pair[1].status == 200]
    if not stops:
        pytest.skip("this short run acknowledged no stop")
    stop = stops[-1][0]
    fake = {"verdicts": [{"invariant": "single-active-session", "kind": "safety", "status": "invalid",
                          "violations": [{"invariant": "single-active-session", "message": "m", "ops": [stop.index],
                                          "details": {}}]}], "plan": record.result["plan"]}
    record.result = fake
    _, case = select_case(record, 1)
    session = stop.args["session_id"]
    ref = case.refs[session]
    assert ref.startswith("step:"), ref
    creator = int(ref.split(":")[1].split(".")[0])
    assert creator in {s.index for s in case.steps} and creator < stop.index
    assert record.history[creator].f in ("session.start", "legacy.start")


def test_shrinking_keeps_exactly_the_racing_pair(race_run: Path) -> None:
    record = load_run(race_run)
    _, case = select_case(record)
    assert len(case.steps) > 2
    result = shrink(case, lambda c: _violated_on_record(record.history, c), budget_s=30)
    assert not result.out_of_time
    assert len(result.case.steps) == 2
    assert _violated_on_record(record.history, result.case)
    assert len(result.removed_steps) == len(case.steps) - 2
    # one-minimal: removing either of the two leaves no violation
    for step in result.case.steps:
        assert not _violated_on_record(record.history, result.case.with_parts(
            tuple(s for s in result.case.steps if s != step), ()))
    assert any("sent together" in line for line in describe(result.case))


def test_numbering_of_reproduce_commands_matches_the_violations(race_run: Path) -> None:
    result = json.loads((race_run / "result.json").read_text())
    listed = numbered_violations(result)
    for number, (verdict, violation) in enumerate(listed, 1):
        if verdict["kind"] == "slo":
            assert violation.get("reproduce") is None
        else:
            assert violation["reproduce"].endswith(f"--violation {number}")
            assert str(race_run) in violation["reproduce"]
    html = (race_run / "report.html").read_text()
    assert "stormproof reproduce" in html


def test_bad_input_is_one_line(tmp_path: Path, race_run: Path) -> None:
    with pytest.raises(SelectionError, match="not a run directory"):
        load_run(tmp_path)
    count = len(numbered_violations(load_run(race_run).result))
    with pytest.raises(SelectionError, match=f"out of range; this run has violations 1 to {count}"):
        select_case(load_run(race_run), count + 1)


def test_the_creator_is_the_first_answer_not_the_first_request() -> None:
    """A start sent first but answered 409 after another start's 201 does not stand for the session."""
    from stormproof.harness.reproduce.select import _creators

    appt, sid, t = "a" * 8 + "-0000-0000-0000-" + "0" * 12, "b" * 8 + "-0000-0000-0000-" + "0" * 12, "t"
    args = {"appointment_id": appt}
    ops = [Op(0, "invoke", "u1", "session.start", t, args, time_ns=0),
           Op(1, "invoke", "u2", "session.start", t, args, time_ns=1),
           Op(2, "ok", "u2", "session.start", t, args, 201, {"id": sid}, time_ns=2, invoke_index=1),
           Op(3, "fail", "u1", "session.start", t, args, 409, {"active_session_id": sid}, time_ns=3, invoke_index=0)]
    assert _creators(History(ops))[sid] == (1, "id")


def test_a_conflict_naming_a_stopped_session_brings_the_stop_that_ended_it(tmp_path: Path) -> None:
    """conflict-misnamed cites the 409 start; the session it names is wrong only because a stop had ended it.
    Without that stop (and the start that made the session) the replay's 409 is right: 0/10 reproduced."""
    from stormproof.harness.reproduce.select import RunRecord

    appt, sid, t = "a" * 8 + "-0000-0000-0000-" + "0" * 12, "b" * 8 + "-0000-0000-0000-" + "0" * 12, "t"
    start = {"appointment_id": appt, "idempotency_key": "k1"}
    stop = {"session_id": sid, "idempotency_key": "k2"}
    late = {"appointment_id": appt, "idempotency_key": "k3"}
    # a storm: a long-running start (u9) overlaps them all, so the overlap chain puts them in one group
    storm = {"appointment_id": appt, "idempotency_key": "k9"}
    ops = [Op(0, "invoke", "u1", "session.start", t, start, time_ns=0),
           Op(1, "invoke", "u9", "session.start", t, storm, time_ns=1),
           Op(2, "ok", "u1", "session.start", t, start, 201, {"id": sid}, time_ns=2, invoke_index=0),
           Op(3, "invoke", "u2", "session.stop", t, stop, time_ns=3),
           Op(4, "ok", "u2", "session.stop", t, stop, 200, {}, time_ns=4, invoke_index=3),
           Op(5, "invoke", "u3", "session.start", t, late, time_ns=5),
           Op(6, "fail", "u3", "session.start", t, late, 409,
              {"problem": "active-session-exists", "active_session_id": sid}, time_ns=6, invoke_index=5),
           Op(7, "fail", "u9", "session.start", t, storm, 409,
              {"problem": "active-session-exists", "active_session_id": sid}, time_ns=7, invoke_index=1)]
    violation = {"type": "conflict-misnamed", "ops": [5, 6], "details": {"active_session_id": sid}}
    result = {"verdicts": [{"invariant": "single-active-session", "kind": "safety", "status": "invalid",
                            "violations": [violation]}],
              "plan": {"weakenings": ["conflict-names-active"]}}
    record = RunRecord(tmp_path, result, History(ops), [{"company_id": t, "appointment_ids": [appt]}])
    _, case = select_case(record, 1)
    steps = {step.index for step in case.steps}
    assert {0, 3, 5} <= steps  # the start, the stop that ended it, the 409
    groups = {step.index: step.group for step in case.steps}
    assert groups[0] <= groups[3] < groups[5]  # ended before the refused start is sent


def test_a_read_brings_the_writes_on_its_row_answered_before_it(tmp_path: Path) -> None:
    """A session read answering its appointment's later session: the stop of the first session and the start
    of the second name neither the read nor its session, yet without them the replay reads the right row
    (session-read-latest was 0/5). Writes on other appointments, and writes answered after the read was
    sent, stay out."""
    appt, other = "a" * 8 + "-0000-0000-0000-" + "0" * 12, "c" * 8 + "-0000-0000-0000-" + "0" * 12
    s1, s2, s3 = ("b" * 8 + f"-0000-0000-0000-{n:012d}" for n in (1, 2, 3))
    t = "t"
    ops = [Op(0, "invoke", "u1", "session.start", t, {"appointment_id": appt, "idempotency_key": "k1"}, time_ns=0),
           Op(1, "ok", "u1", "session.start", t, {}, 201, {"id": s1}, time_ns=1, invoke_index=0),
           Op(2, "invoke", "u2", "session.stop", t, {"session_id": s1, "idempotency_key": "k2"}, time_ns=2),
           Op(3, "ok", "u2", "session.stop", t, {}, 200, {"id": s1, "status": "stopped"}, time_ns=3, invoke_index=2),
           Op(4, "invoke", "u3", "session.start", t, {"appointment_id": appt, "idempotency_key": "k3"}, time_ns=4),
           Op(5, "ok", "u3", "session.start", t, {}, 201, {"id": s2}, time_ns=5, invoke_index=4),
           Op(6, "invoke", "u4", "session.start", t, {"appointment_id": other, "idempotency_key": "k4"}, time_ns=6),
           Op(7, "ok", "u4", "session.start", t, {}, 201, {"id": s3}, time_ns=7, invoke_index=6),
           Op(8, "invoke", "u5", "session.read", t, {"session_id": s1}, time_ns=8),
           Op(9, "invoke", "u6", "session.stop", t, {"session_id": s2, "idempotency_key": "k5"}, time_ns=9),
           Op(10, "ok", "u5", "session.read", t, {}, 200, {"id": s2, "appointment_id": appt}, time_ns=10,
              invoke_index=8),
           Op(11, "ok", "u6", "session.stop", t, {}, 200, {"id": s2}, time_ns=11, invoke_index=9)]
    violation = {"ops": [8, 10], "details": {"type": "read-other-row", "asked": s1, "answered": s2}}
    result = {"verdicts": [{"invariant": "reads-current", "kind": "safety", "status": "invalid",
                            "violations": [violation]}], "plan": {"weakenings": ["session-read-latest"]}}
    record = RunRecord(tmp_path, result, History(ops), [{"company_id": t, "appointment_ids": [appt, other]}])
    _, case = select_case(record, 1, max_context=0)
    assert {step.index for step in case.steps} == {0, 2, 4, 8}


def test_a_stop_refused_404_is_replayed_after_the_stop_that_stopped_the_session(tmp_path: Path) -> None:
    """stop-refused cites a 404 stop; in the run another stop of the session overlapped it and committed first.
    Sent together through the race window's barrier, both stops found the session active (4/10, then 0/10):
    the stop that stopped it plays first, with the start that made the session, and no barrier is asked."""
    appt, sid, t = "a" * 8 + "-0000-0000-0000-" + "0" * 12, "b" * 8 + "-0000-0000-0000-" + "0" * 12, "t"
    start = {"appointment_id": appt, "idempotency_key": "k1"}
    refused = {"session_id": sid, "idempotency_key": "k2"}
    stopper = {"session_id": sid, "idempotency_key": "k3"}
    storm = {"appointment_id": appt, "idempotency_key": "k9"}
    ops = [Op(0, "invoke", "u1", "session.start", t, start, time_ns=0),
           Op(1, "invoke", "u9", "session.start", t, storm, time_ns=1),
           Op(2, "ok", "u1", "session.start", t, start, 201, {"id": sid}, time_ns=2, invoke_index=0),
           Op(3, "invoke", "u2", "session.stop", t, refused, time_ns=3),
           Op(4, "invoke", "u3", "session.stop", t, stopper, time_ns=4),
           Op(5, "ok", "u3", "session.stop", t, stopper, 200, {"id": sid, "status": "stopped"}, time_ns=5,
              invoke_index=4),
           Op(6, "fail", "u2", "session.stop", t, refused, 404, {"problem": "not-found"}, time_ns=6, invoke_index=3),
           Op(7, "fail", "u9", "session.start", t, storm, 409,
              {"problem": "active-session-exists", "active_session_id": sid}, time_ns=7, invoke_index=1)]
    violation = {"ops": [2, 3, 6], "details": {"type": "stop-refused", "session_id": sid, "status": 404}}
    result = {"verdicts": [{"invariant": "single-active-session", "kind": "safety", "status": "invalid",
                            "violations": [violation]}],
              "plan": {"weakenings": ["stop-finds-active-only"],
                       "scenario": {"stack": {"env": {"STORMPROOF_RACE_DELAY_MS": "30"}}}}}
    record = RunRecord(tmp_path, result, History(ops), [{"company_id": t, "appointment_ids": [appt]}])
    _, case = select_case(record, 1)
    groups = {step.index: step.group for step in case.steps}
    assert {0, 3, 4} <= set(groups)
    assert groups[0] <= groups[4] < groups[3]  # the session stopped, then the refused stop sent
    assert "STORMPROOF_RACE_BARRIER" not in (case.stack.get("env") or {})


def test_a_group_keeps_the_order_of_requests_that_did_not_overlap(tmp_path: Path) -> None:
    """A long start overlaps a key used by tenant t1 and then by tenant t0: the three chain into one group,
    and sent at once the two keyed requests may arrive the other way round (idempotency-tenant-scope was
    0/5 reproduced). The second is sent after the first's answer; the long start still races both."""
    import asyncio
    from types import SimpleNamespace

    from stormproof.harness.reproduce.replay import Replayer

    a0, a1 = ("a" * 8 + f"-0000-0000-0000-00000000000{n}" for n in range(2))
    first = {"route": "POST /x", "method": "POST", "path": f"/x/{a1}", "idempotency_key": "k"}
    second = {"route": "POST /x", "method": "POST", "path": f"/x/{a0}", "idempotency_key": "k"}
    long = {"appointment_id": a0, "idempotency_key": "k9"}
    ops = [Op(0, "invoke", "u9", "session.start", "t0", long, time_ns=0),
           Op(1, "invoke", "u1", "probe.idempotency", "t1", first, time_ns=1),
           Op(2, "ok", "u1", "probe.idempotency", "t1", first, 200, {}, time_ns=2, invoke_index=1),
           Op(3, "invoke", "u1", "probe.idempotency", "t0", second, time_ns=3),
           Op(4, "fail", "u1", "probe.idempotency", "t0", second, 422, {}, time_ns=4, invoke_index=3),
           Op(5, "ok", "u9", "session.start", "t0", long, 201, {"id": "s"}, time_ns=5, invoke_index=0)]
    violation = {"ops": [1, 3], "details": {}}
    result = {"verdicts": [{"invariant": "idempotent-replay", "kind": "safety", "status": "invalid",
                            "violations": [violation]}], "plan": {"weakenings": ["idempotency-tenant-scope"]}}
    tenants = [{"company_id": "t0", "appointment_ids": [a0]}, {"company_id": "t1", "appointment_ids": [a1]}]
    _, case = select_case(RunRecord(tmp_path, result, History(ops), tenants), 1)
    by_index = {step.index: step for step in case.steps}
    assert {0, 1, 3} <= set(by_index) and len({s.group for s in case.steps}) == 1
    assert by_index[3].after == (1,) and by_index[1].after == () and by_index[0].after == ()
    assert any("(after #1)" in line for line in describe(case))

    events: list[str] = []

    class _Order(Replayer):
        async def _send(self, client, step, case, fresh, ctx, record):  # type: ignore[no-untyped-def]
            events.append(f"sent {step.index}")
            await asyncio.sleep(0.05 if step.index == 1 else 0.0)  # the first answer comes late
            events.append(f"answered {step.index}")

    replayer = _Order(case, stack=SimpleNamespace(app_url="http://127.0.0.1:9"))
    asyncio.run(replayer._group(case.groups[0], case, {}, None, None))  # type: ignore[arg-type]
    assert events.index("sent 3") > events.index("answered 1")
    assert events.index("sent 0") < events.index("answered 1")  # the overlapping start still races


def _rate_record(tmp_path: Path, ops: list[Op], violation: dict) -> RunRecord:
    result = {"verdicts": [{"invariant": "rate-limit-enforced", "kind": "safety", "status": "invalid",
                            "violations": [violation]}], "plan": {"weakenings": ["rate-limit"]}}
    return RunRecord(tmp_path, result, History(ops), [{"company_id": "t0"}, {"company_id": "t1"}])


def _lists(spec: list[tuple[str, int, int, int]]) -> list[Op]:
    """(tenant, sent ns, answered ns, status) -> appointment.list invokes and completions, in time order."""
    events = []
    for n, (tenant, sent, answered, status) in enumerate(spec):
        events.append((sent, n, "invoke", tenant, None))
        events.append((answered, n, "ok" if status < 400 else "fail", tenant, status))
    ops: list[Op] = []
    invoke_at: dict[int, int] = {}
    for at, n, kind, tenant, status in sorted(events):
        if kind == "invoke":
            invoke_at[n] = len(ops)
            ops.append(Op(len(ops), "invoke", f"u{n}", "appointment.list", tenant, {}, time_ns=at))
        else:
            ops.append(Op(len(ops), kind, f"u{n}", "appointment.list", tenant, {}, status, {}, time_ns=at,
                          invoke_index=invoke_at[n]))
    return ops


def test_an_over_limit_second_selects_the_tenants_requests_accepted_in_it(tmp_path: Path) -> None:
    """over-limit names a tenant and a second, no request: the case is that tenant's accepted requests of
    that second (rate-limit had nothing to replay)."""
    s = 1_000_000_000
    spec = [("t0", s + 10 * n, s + 10 * n + 5, 200) for n in range(25)]  # second 1: 25 accepted
    spec += [("t0", 2 * s + 10, 2 * s + 20, 200), ("t1", s + 7, s + 9, 200), ("t0", s + 300, s + 400, 429)]
    ops = _lists(spec)
    violation = {"ops": [], "details": {"type": "over-limit", "tenant": "t0", "second": 1, "accepted": 25}}
    _, case = select_case(_rate_record(tmp_path, ops, violation), 1)
    assert len(case.steps) == 25
    assert all(step.tenant == "t0" and step.status == 200 for step in case.steps)


def test_a_quiet_tenants_429_brings_the_others_traffic_before_it(tmp_path: Path) -> None:
    """quiet-tenant-limited cites the refused request alone; replayed alone it is accepted (rate-limit-per-tenant
    0/5). The other tenants' requests of the second before it join it, and it is sent after their answers."""
    s = 1_000_000_000
    spec = [("t1", 3 * s + 10 * n, 3 * s + 10 * n + 5, 200 if n < 15 else 429) for n in range(30)]
    spec += [("t1", s, s + 5, 200),  # long before: not in the window
             ("t0", 3 * s + 400, 3 * s + 450, 429)]
    ops = _lists(spec)
    refused = next(op for op in ops if op.tenant == "t0" and not op.is_invoke)
    violation = {"ops": [refused.index], "details": {"type": "quiet-tenant-limited", "tenant": "t0",
                                                     "sent_in_window": 1}}
    _, case = select_case(_rate_record(tmp_path, ops, violation), 1)
    others = [step for step in case.steps if step.tenant == "t1"]
    assert len(others) == 30
    quiet = next(step for step in case.steps if step.tenant == "t0")
    assert set(quiet.after) >= {step.index for step in others if step.group == quiet.group}


def test_a_429s_own_answer_brings_its_tenants_traffic_before_it(tmp_path: Path) -> None:
    """retry-after-too-long cites the refused request alone; replayed alone it is served, not refused, so its
    Retry-After is never seen again (retry-after-units 0/5). The same tenant's requests of the second before
    its answer join it (nearest first), the other tenants' do not, and it is sent after their answers."""
    s = 1_000_000_000
    spec = [("t0", 3 * s + 10 * n, 3 * s + 10 * n + 5, 200) for n in range(20)]
    spec += [("t0", s, s + 5, 200),  # long before: not in the window
             ("t1", 3 * s + 50, 3 * s + 60, 200),  # another tenant's: its allowance is its own
             ("t0", 3 * s + 400, 3 * s + 450, 429)]
    ops = _lists(spec)
    refused = next(op for op in ops if op.status == 429)
    violation = {"ops": [refused.invoke_index, refused.index],
                 "details": {"type": "retry-after-too-long", "tenant": "t0", "retry_after_s": 5000.0}}
    _, case = select_case(_rate_record(tmp_path, ops, violation), 1)
    assert {step.tenant for step in case.steps} == {"t0"}
    assert len(case.steps) == 21  # the 20 of its second and the 429
    last = next(step for step in case.steps if step.status == 429)
    assert set(last.after) >= {step.index for step in case.steps if step.group == last.group and step is not last}


def test_a_key_reused_past_its_ttl_is_reused_as_late_in_the_replay(tmp_path: Path) -> None:
    """Groups play back to back: a key the run reused 5.5 s later (past a 3 s TTL) was reused at once, within
    the TTL, where a replayed answer is right (idempotency-expiry 0/5). The second waits as long as in the run."""
    import asyncio
    import time
    from types import SimpleNamespace

    from stormproof.harness.reproduce.replay import Replayer

    s = 1_000_000_000
    args = {"route": "POST /api/v1/calls", "probe": "expired", "method": "POST", "path": "/api/v1/calls",
            "idempotency_key": "k"}
    ops = [Op(0, "invoke", "u1", "probe.idempotency", "t0", {**args, "step": 1}, time_ns=0),
           Op(1, "ok", "u1", "probe.idempotency", "t0", {**args, "step": 1}, 201, {}, time_ns=s // 10, invoke_index=0),
           Op(2, "invoke", "u1", "probe.idempotency", "t0", {**args, "step": 2}, time_ns=s // 10 + 5 * s // 2),
           Op(3, "ok", "u1", "probe.idempotency", "t0", {**args, "step": 2}, 201, {}, time_ns=3 * s, invoke_index=2)]
    violation = {"ops": [0, 2], "details": {}}
    result = {"verdicts": [{"invariant": "idempotent-replay", "kind": "safety", "status": "invalid",
                            "violations": [violation]}], "plan": {"weakenings": ["idempotency-expiry"]}}
    _, case = select_case(RunRecord(tmp_path, result, History(ops), [{"company_id": "t0"}]), 1)
    late = next(step for step in case.steps if step.index == 2)
    assert late.pause_s == 2.5 and next(step for step in case.steps if step.index == 0).pause_s == 0.0
    assert any("2.5 s after its key's last answer" in line for line in describe(case))

    sent: dict[int, float] = {}

    class _Clock(Replayer):
        async def _send(self, client, step, case, fresh, ctx, record):  # type: ignore[no-untyped-def]
            sent[step.index] = time.monotonic()

    replayer = _Clock(case, stack=SimpleNamespace(app_url="http://127.0.0.1:9"))
    for group in case.groups:
        asyncio.run(replayer._group(group, case, {}, None, None))  # type: ignore[arg-type]
    assert sent[2] - sent[0] >= 2.5


def test_a_final_state_violation_naming_no_request_brings_what_used_its_resources(tmp_path: Path) -> None:
    """deletion-cascade's not-deleted names a deletion and an appointment, no request: the creator of each
    alone leaves no call to leave behind and no deletion run ("nothing to replay"). The requests that used
    them (the call submitted on the appointment, the confirmation) join, and a tenant id never does."""
    t, appt, call, deletion = "t0", *("%s-0000-0000-0000-000000000000" % (c * 8) for c in "abc")
    made = [("appointment.create", {}, 201, {"id": appt}),
            ("call.submit", {"appointment_id": appt, "idempotency_key": "k"}, 202, {"id": call}),
            ("deletion.request", {"scope": "appointment", "target_id": appt}, 202, {"id": deletion}),
            ("deletion.confirm", {"deletion_id": deletion, "wrong_token": True}, 403, {}),
            ("deletion.confirm", {"deletion_id": deletion}, 200, {})]
    ops: list[Op] = []
    for n, (f, args, status, result) in enumerate(made):
        ops.append(Op(len(ops), "invoke", "u1", f, t, args, time_ns=10 * n))
        ops.append(Op(len(ops), "ok" if status < 400 else "fail", "u1", f, t, args, status, result,
                      time_ns=10 * n + 5, invoke_index=len(ops) - 1))
    violation = {"ops": [], "details": {"type": "not-deleted", "deletion_id": deletion, "appointment_id": appt,
                                        "company_id": t, "tables": ["calls"]}}
    result = {"verdicts": [{"invariant": "deletion-audited", "kind": "safety", "status": "invalid",
                            "violations": [violation]}], "plan": {"weakenings": ["deletion-cascade"]}}
    record = RunRecord(tmp_path, result, History(ops), [{"company_id": t}])
    _, case = select_case(record, 1)
    fs = [step.f for step in case.steps]
    assert {"appointment.create", "call.submit", "deletion.request"} <= set(fs)
    assert any(step.f == "deletion.confirm" and step.status == 200 for step in case.steps)


def test_a_task_name_is_no_resource_id() -> None:
    """'shunya.poll_shunya_job_status' read as the job id 'job_status': task-dedupe's selection looked for it."""
    from stormproof.harness.reproduce.select import cites

    assert not cites({"ops": [], "details": {"type": "duplicate-in-flight",
                                             "task_name": "shunya.poll_shunya_job_status"}})
    assert cites({"ops": [], "details": {"shunya_job_id": "job_42"}})


def test_loosened_sends_the_cited_requests_with_only_what_they_need_first() -> None:
    """A cited start waiting for every answer its group had (the run's order) loses the race it was in
    (legacy-start-lock 0/5); loosened keeps only the request that made its appointment and its consent."""
    from stormproof.harness.reproduce.case import Step
    from stormproof.harness.reproduce.shrink import loosened

    made, consent, other, start, raced = 1, 2, 3, 4, 5
    appointment = "aaaaaaaa-0000-0000-0000-000000000001"
    steps = (
        Step(made, 0, "u1", "appointment.create", "t0", {}),
        Step(consent, 1, "u1", "consent.grant", "t0", {"appointment_id": appointment}, after=()),
        Step(raced, 1, "u2", "session.start", "t0", {"appointment_id": appointment}, after=(consent,)),
        Step(other, 1, "u3", "session.stop", "t0", {"session_id": "bbbbbbbb-0000-0000-0000-000000000002"},
             after=(consent,)),
        Step(start, 1, "u4", "legacy.start", "t0", {"appointment_id": appointment}, after=(consent, other)),
    )
    case = Case("single-active-session", steps, refs={appointment: f"step:{made}.id"},
                source={"cited": [raced, start]})
    loose = loosened(case)
    assert loose is not None
    after = {s.index: s.after for s in loose.steps}
    assert after == {made: (), consent: (), raced: (consent,), other: (consent,), start: (consent,)}
    assert loosened(loose) is None  # nothing left to loosen
    assert loosened(Case("single-active-session", steps, refs=case.refs, source={})) is None  # none cited


def test_seeded_pairs_are_named_by_their_place_in_the_seed() -> None:
    """The seed's pairs of appointments (a list of lists) are named like its other lists: an id of a pair named
    after the first answer that carried it replayed as that answer's own id, an unknown appointment (a 404 where
    the run had a 409 or 200, every fix on included; 2026-12-04)."""
    from stormproof.harness.reproduce.select import _seeded_refs

    refs = _seeded_refs([{"company_id": "c0", "appointment_ids": ["a0"],
                          "overlap_pair_ids": [["o0", "o1"], ["o2", "o3"]], "adjacent_pair_ids": [["j0", "j1"]]}])
    assert refs["a0"] == "t0.appointment_ids.0"
    assert (refs["o1"], refs["o2"], refs["j1"]) == ("t0.overlap_pair_ids.0.1", "t0.overlap_pair_ids.1.0",
                                                    "t0.adjacent_pair_ids.0.1")
