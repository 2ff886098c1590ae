"""single-active-session and single-assignment on hand-made histories."""

from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder


def _session(sid: str, appointment: str = "a1", status: str = "recording", company: str = "c1") -> dict:
    return {"id": sid, "company_id": company, "appointment_id": appointment, "status": status}


def _run(name: str, b: HistoryBuilder, **tables: object):
    (verdict,) = check_all(b.build(), Snapshot(**tables), [name])  # type: ignore[arg-type]
    return verdict


def test_two_acknowledged_overlapping_sessions_are_flagged() -> None:
    b = HistoryBuilder()
    _, ack1 = b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    _, ack2 = b.call("session.start", 20, 30, 201, process="p2", appointment_id="a1", result={"id": "s2"})
    b.call("session.stop", 40, 50, 200, session_id="s1")
    verdict = _run("single-active-session", b, recording_sessions=(_session("s1", status="stopped"),
                                                                      _session("s2")))
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.ops == (b.at(ack1), b.at(ack2))
    assert violation.details["type"] == "history"
    assert verdict.summary["by_type"]["history"]["count"] == 1


def test_start_after_a_stop_is_valid_even_if_stop_answer_is_late() -> None:
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    stop = b.invoke("session.stop", 15, session_id="s1")  # the stop may act at 15
    b.call("session.start", 20, 30, 201, process="p2", appointment_id="a1", result={"id": "s2"})
    b.complete(stop, 40, 200)
    assert _run("single-active-session", b, recording_sessions=(
        _session("s1", status="stopped"), _session("s2"))).status == "valid"


def test_unknown_stop_makes_overlap_uncertain_and_failed_stop_does_not() -> None:
    for stop_status, expected in ((None, "valid"), (404, "invalid")):
        b = HistoryBuilder()
        b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
        b.call("session.stop", 12, 500, stop_status, session_id="s1")  # timeout vs definite no-effect
        b.call("session.start", 20, 30, 201, process="p2", appointment_id="a1", result={"id": "s2"})
        verdict = _run("single-active-session", b, recording_sessions=(_session("s1", status="stopped"),
                                                                          _session("s2")))
        assert verdict.status == expected, stop_status


def test_concurrent_starts_on_different_appointments_and_replays_are_valid() -> None:
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    b.call("legacy.start", 1, 9, 201, process="p2", appointment_id="a2", result={"id": "s2"})
    b.call("session.start", 20, 25, 201, process="p3", appointment_id="a1", result={"id": "s1", "replayed": True})
    b.call("session.start", 21, 26, 409, process="p4", appointment_id="a1", result={"active_session_id": "s1"})
    assert _run("single-active-session", b, recording_sessions=(
        _session("s1"), _session("s2", appointment="a2"))).status == "valid"


def test_a_start_answered_the_session_another_start_began_is_flagged() -> None:
    """Two starts (different keys, or none) answered 2xx with one session: the later started nothing."""
    for keys in (("k1", "k2"), (None, None)):
        b = HistoryBuilder()
        first, ack1 = b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"},
                             idempotency_key=keys[0])
        again, ack2 = b.call("legacy.start", 20, 30, 201, process="p2", appointment_id="a1", result={"id": "s1"},
                             idempotency_key=keys[1])
        verdict = _run("single-active-session", b, recording_sessions=(_session("s1"),))
        assert verdict.status == "invalid", keys
        (violation,) = verdict.violations
        assert violation.details["type"] == "start-answered-existing"
        assert violation.ops == tuple(sorted(b.at(i) for i in (first, ack1, again, ack2)))
        assert verdict.summary["starts_answered_existing"] == 1


def test_a_session_answered_again_as_a_replay_or_under_its_starts_key_is_valid() -> None:
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"}, idempotency_key="k1")
    # the same key sent while the first ran, given the first's result (no replay header), and a marked replay
    b.call("session.start", 5, 12, 201, process="p2", appointment_id="a1", result={"id": "s1"},
           idempotency_key="k1")
    b.call("session.start", 20, 25, 201, process="p3", appointment_id="a1", result={"id": "s1", "replayed": True},
           idempotency_key="k1")
    # another tenant's request under the same key text is not a replay of this one
    verdict = _run("single-active-session", b, recording_sessions=(_session("s1"),))
    assert verdict.status == "valid", verdict.violations
    b.call("session.start", 30, 35, 201, process="p4", tenant="c2", appointment_id="a1", result={"id": "s1"},
           idempotency_key="k1")
    assert _run("single-active-session", b, recording_sessions=(_session("s1"),)).status == "invalid"


def test_a_stop_answered_404_for_an_own_session_that_existed_is_refused() -> None:
    """s1 was started for c1, then stopped; a second stop answered 404 said "no such session" of it."""
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    b.call("session.stop", 20, 30, 200, session_id="s1")
    _, missing = b.call("session.stop", 40, 50, 404, process="p2", session_id="s1")
    verdict = _run("single-active-session", b, recording_sessions=(_session("s1", status="stopped"),))
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "stop-refused" and b.at(missing) in violation.ops


def test_a_stop_answered_404_is_valid_for_another_tenant_a_session_gone_or_not_yet_started() -> None:
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    b.call("session.stop", 20, 30, 404, process="p2", tenant="c2", session_id="s1")  # another tenant's probe
    b.call("session.stop", 5, 8, 404, process="p3", session_id="s1")  # sent before the start was answered
    b.call("session.start", 0, 10, 201, process="p4", appointment_id="a2", result={"id": "s2"})
    b.call("session.stop", 20, 30, 404, process="p5", session_id="s2")  # s2 is gone at the end (deleted)
    assert _run("single-active-session", b, recording_sessions=(_session("s1"),)).status == "valid"


def test_two_active_rows_in_the_final_state_are_flagged_with_their_acks() -> None:
    b = HistoryBuilder()
    _, ack = b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    b.call("session.start", 5, 500, None, process="p2", appointment_id="a1")  # timed out: may have applied
    verdict = _run("single-active-session", b, recording_sessions=(_session("s1"), _session("s9", status="pending")))
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "final-state" and violation.ops == (b.at(ack),)


def test_missing_sessions_table_is_unknown_not_valid() -> None:
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    verdict = _run("single-active-session", b)
    assert verdict.status == "unknown" and "recording_sessions" in (verdict.error or "")


def _assignment(aid: str, appointment: str, rep: str, status: str = "active", window: tuple = (0.0, 10.0)) -> dict:
    return {"id": aid, "company_id": "c1", "appointment_id": appointment, "rep_id": rep, "status": status,
            "starts_at": window[0], "ends_at": window[1]}


def test_appointment_acknowledged_to_two_reps_is_flagged() -> None:
    b = HistoryBuilder()
    _, ack1 = b.call("appointment.assign", 0, 10, 200, appointment_id="a1", rep_id="r1", result={"id": "x1"})
    b.call("appointment.unassign", 12, 500, 404, appointment_id="a1")  # definite no-effect
    _, ack2 = b.call("appointment.assign", 20, 30, 200, process="p2", appointment_id="a1", rep_id="r2",
                     result={"id": "x2"})
    verdict = _run("single-assignment", b, appointment_assignments=(
        _assignment("x1", "a1", "r1", "released"), _assignment("x2", "a1", "r2")))
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.ops == (b.at(ack1), b.at(ack2)) and violation.details["reps"] == ("r1", "r2")


def test_reassignment_after_unassign_and_same_rep_again_are_valid() -> None:
    b = HistoryBuilder()
    b.call("appointment.assign", 0, 10, 200, appointment_id="a1", rep_id="r1", result={"id": "x1"})
    b.call("appointment.assign", 11, 12, 200, appointment_id="a1", rep_id="r1", result={"id": "x1"})
    unassign = b.invoke("appointment.unassign", 15, process="p3", appointment_id="a1")  # answer lost
    b.call("appointment.assign", 20, 30, 200, process="p2", appointment_id="a1", rep_id="r2", result={"id": "x2"})
    b.complete(unassign, 600, None, error="ReadTimeout")
    verdict = _run("single-assignment", b, appointment_assignments=(
        _assignment("x1", "a1", "r1", "released"), _assignment("x2", "a1", "r2")),
        appointments=({"id": "a1", "company_id": "c1", "assigned_rep_id": "r2"},))
    assert verdict.status == "valid", verdict.violations


def test_final_state_double_active_rep_overlap_and_denormalised_pointer() -> None:
    b = HistoryBuilder()
    _, ack = b.call("appointment.assign", 0, 10, 200, appointment_id="a1", rep_id="r1", result={"id": "x1"})
    verdict = _run("single-assignment", b, appointment_assignments=(
        _assignment("x1", "a1", "r1", window=(0, 10)),
        _assignment("x2", "a1", "r2", window=(0, 10)),
        _assignment("x3", "a2", "r3", window=(100, 200)),
        _assignment("x4", "a3", "r3", window=(150, 250)),
        _assignment("x5", "a4", "r3", window=(250, 300)),  # touches, does not overlap
    ), appointments=({"id": "a2", "company_id": "c1", "assigned_rep_id": None},))
    types = sorted(v.details["type"] for v in verdict.violations)
    assert types == ["final-appointment", "final-denormalised", "final-rep-overlap"]
    by_type = {v.details["type"]: v for v in verdict.violations}
    assert by_type["final-appointment"].ops == (b.at(ack),)
    assert by_type["final-rep-overlap"].details["assignments"] == ("x3", "x4")


def test_late_replay_of_a_stopped_session_is_not_an_overlap() -> None:
    """A replay acknowledges an old creation: stops before it still count (found by the model test)."""
    b = HistoryBuilder()
    lost = b.invoke("session.start", 0, appointment_id="a1", idempotency_key="k")
    b.complete(lost, 5, None, error="ReadTimeout")  # created s4, answer lost
    b.call("session.stop", 10, 15, 200, session_id="s4")
    b.call("session.start", 20, 25, 201, process="p2", appointment_id="a1", result={"id": "s9"})
    b.call("session.start", 30, 35, 201, appointment_id="a1", idempotency_key="k",
           result={"id": "s4", "replayed": True})
    assert _run("single-active-session", b, recording_sessions=(_session("s4", status="stopped"),
                                                                  _session("s9"))).status == "valid"


def test_replayed_assign_of_a_released_assignment_is_not_an_overlap() -> None:
    b = HistoryBuilder()
    b.call("appointment.assign", 0, 5, 200, appointment_id="a1", rep_id="r1", idempotency_key="k",
           result={"id": "x1"})
    b.call("appointment.unassign", 6, 7, 200, appointment_id="a1")
    b.call("appointment.assign", 8, 9, 200, process="p2", appointment_id="a1", rep_id="r2", result={"id": "x2"})
    b.call("appointment.assign", 10, 11, 200, appointment_id="a1", rep_id="r1", idempotency_key="k",
           result={"id": "x1", "replayed": True})
    rows = (_assignment("x1", "a1", "r1", "released"), _assignment("x2", "a1", "r2"))
    assert _run("single-assignment", b, appointment_assignments=rows).status == "valid"
    assert _run("no-lost-acknowledged-write", b, appointment_assignments=rows).status == "valid"


def _conflict_history(named: str | None, *, replayed: bool = False) -> HistoryBuilder:
    """s1 started then stopped (2xx), s2 started; a later start refused 409 naming ``named``."""
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    b.call("session.stop", 20, 30, 200, session_id="s1")
    b.call("session.start", 40, 50, 201, appointment_id="a1", result={"id": "s2"})
    result = {"problem": "active-session-exists", "replayed": replayed}
    if named is not None:
        result["active_session_id"] = named
    b.call("session.start", 60, 70, 409, process="p2", appointment_id="a1", result=result)
    return b


_FINAL = (_session("s1", status="stopped"), _session("s2"), _session("s9", appointment="a2"))


def test_conflict_naming_the_active_session_is_valid() -> None:
    verdict = _run("single-active-session", _conflict_history("s2"), recording_sessions=_FINAL)
    assert verdict.status == "valid"
    assert verdict.summary["conflicts_judged"] == 1


def test_conflict_naming_a_stopped_another_or_no_session_is_flagged() -> None:
    for named in ("s1", "s9", None):
        verdict = _run("single-active-session", _conflict_history(named), recording_sessions=_FINAL)
        assert verdict.status == "invalid", named
        (violation,) = verdict.violations
        assert violation.details["type"] == "conflict-misnamed"


def test_conflict_naming_a_session_that_never_existed_is_flagged() -> None:
    """The final state has the appointment and not the session the 409 named: it never existed (a start that
    rolled its own session back and named it). Without the appointment (deleted since, with its sessions), or
    without the appointments table, nothing is concluded."""
    appointments = ({"id": "a1", "company_id": "c1"}, {"id": "a2", "company_id": "c1"})
    verdict = _run("single-active-session", _conflict_history("s7"), recording_sessions=_FINAL,
                   appointments=appointments)
    assert [v.details["type"] for v in verdict.violations] == ["conflict-misnamed"], verdict
    assert "never existed" in verdict.violations[0].message
    gone = _run("single-active-session", _conflict_history("s7"), recording_sessions=_FINAL,
                appointments=appointments[1:])
    assert gone.status == "valid", gone
    assert _run("single-active-session", _conflict_history("s7"), recording_sessions=_FINAL).status == "valid"
    named = _run("single-active-session", _conflict_history("s2"), recording_sessions=_FINAL,
                 appointments=appointments)
    assert named.status == "valid", named


def test_replayed_conflict_is_not_judged() -> None:
    """A stored 409 replayed later may name a session stopped since: it answered for an earlier moment."""
    verdict = _run("single-active-session", _conflict_history("s1", replayed=True), recording_sessions=_FINAL)
    assert verdict.status == "valid"


def test_conflict_naming_a_session_whose_stop_ran_concurrently_is_valid() -> None:
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    stop = b.invoke("session.stop", 20, session_id="s1")
    b.call("session.start", 25, 35, 409, process="p2", appointment_id="a1",
           result={"problem": "active-session-exists", "active_session_id": "s1"})
    b.complete(stop, 30, 200)
    assert _run("single-active-session", b, recording_sessions=(_session("s1", status="stopped"),)).status == "valid"


def test_conflict_naming_a_session_a_probe_had_stopped_is_flagged() -> None:
    """A probe's stop answered 2xx (its route derived from the API document) ended s1 as surely as the load's:
    a later start refused as blocked by s1 misnamed its blocker. A probe's stop with no answer proves nothing."""
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    b.call("probe.idempotency", 20, 30, 200, method="POST", path="/api/v1/recordings/sessions/s1/stop")
    conflict = {"problem": "active-session-exists", "active_session_id": "s1"}
    b.call("session.start", 40, 50, 409, process="p2", appointment_id="a1", result=conflict)
    final = (_session("s1", status="stopped"),)
    verdict = _run("single-active-session", b, recording_sessions=final)
    assert [v.details["type"] for v in verdict.violations] == ["conflict-misnamed"]
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", result={"id": "s1"})
    b.call("probe.idempotency", 20, 30, None, error="timeout", method="POST", path="/api/v1/recordings/s1/stop")
    b.call("session.start", 40, 50, 409, process="p2", appointment_id="a1", result=conflict)
    assert _run("single-active-session", b, recording_sessions=final).status == "valid"


def test_a_probes_replayed_unassign_undoes_nothing() -> None:
    """The idempotency probe's second use of a key gets the first one's stored answer (replayed): that request
    unassigned nothing, so it cannot explain r1 and r2 held together (counted, it hid the double assignment)."""
    b = HistoryBuilder()
    path = dict(method="POST", path="/api/v1/appointments/a1/unassign", idempotency_key="k")
    b.call("probe.idempotency", 0, 5, 200, result={"id": "a1"}, probe="replay", step=1, **path)
    b.call("appointment.assign", 10, 20, 200, appointment_id="a1", rep_id="r1", result={"id": "x1"})
    b.call("probe.idempotency", 30, 40, 200, result={"id": "a1", "replayed": True}, probe="replay", step=2, **path)
    b.call("appointment.assign", 50, 60, 200, appointment_id="a1", rep_id="r2", result={"id": "x2"})
    verdict = _run("single-assignment", b)
    assert [v.details["type"] for v in verdict.violations] == ["history"]


def _errored(target: str | None, status: int = 500, f: str = "session.start") -> object:
    """A start (or stop) answered ``status`` while a kill of ``target`` (none: no fault) was in place."""
    b = HistoryBuilder()
    if target is not None:
        b.call("fault", 0, 1, None, process="nemesis", tenant=None, fault="kill", phase="start", target=target)
    args = {"appointment_id": "a1"} if f == "session.start" else {"session_id": "s1"}
    b.call(f, 10, 20, status, result={"problem": "internal-error"} if status >= 500 else {}, **args)
    if target is not None:
        b.call("fault", 30, 31, None, process="nemesis", tenant=None, fault="kill", phase="stop", target=target)
    return _run("single-active-session", b, recording_sessions=())


def test_a_start_or_stop_answered_5xx_under_no_fault_but_redis_is_flagged() -> None:
    """The partial unique index's refusal answered 500 (its error let through) passed redis-flap: a start or a
    stop answered 5xx with no fault in place but a Redis one is start-errored or stop-errored (locks fail open,
    the database decides); a fault on the database or the app excuses it, and a 409 is no error."""
    for target in (None, "redis"):
        verdict = _errored(target)
        assert verdict.status == "invalid", target
        assert [v.details["type"] for v in verdict.violations] == ["start-errored"]
    assert [v.details["type"] for v in _errored("redis", f="session.stop").violations] == ["stop-errored"]
    for target in ("postgres", "app"):
        assert _errored(target).status == "valid", target
    assert _errored("redis", status=409).status == "valid"


def test_a_start_5xx_just_after_a_database_fault_is_excused_as_server_errors_explained_excuses_it() -> None:
    """A pooled connection the fault broke is found broken only when next used: a start answered 500 within
    AFTER_FAULT_S after a database fault stopped is laid to it (as server-errors-explained lays it), one sent
    later is start-errored."""
    from stormproof.harness.invariants.checkers._probes import AFTER_FAULT_S

    def start_after(gap_ms: float) -> object:
        b = HistoryBuilder()
        b.call("fault", 0, 1, None, process="nemesis", tenant=None, fault="reset_peer", phase="start",
               target="postgres")
        b.call("fault", 100, 101, None, process="nemesis", tenant=None, fault="reset_peer", phase="stop",
               target="postgres")
        b.call("session.start", 101 + gap_ms, 120 + gap_ms, 500, result={"problem": "internal-error"},
               appointment_id="a1")
        return _run("single-active-session", b, recording_sessions=())

    assert start_after(AFTER_FAULT_S * 1000 / 2).status == "valid"
    late = start_after(AFTER_FAULT_S * 1000 + 500)
    assert [v.details["type"] for v in late.violations] == ["start-errored"]
