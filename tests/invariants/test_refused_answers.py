"""Refusals that break a promise: a stop refused 409, an assign of the current rep refused 409."""

from __future__ import annotations

from stormproof.harness.history.vocabulary import ASSIGN, SESSION_STOP
from stormproof.harness.invariants import Snapshot, check_all

from .builders import HistoryBuilder

EMPTY = Snapshot.build({"recording_sessions": [], "appointment_assignments": [], "appointments": []})


def _stops(*answers: tuple[int, str | None]):
    b = HistoryBuilder()
    for n, (status, problem) in enumerate(answers):
        result = {"problem": problem} if problem else {"id": "s1"}
        b.call(SESSION_STOP, 10 * n, 10 * n + 5, status, process=f"p{n}", result=result, session_id="s1",
               idempotency_key=f"k{n}", payload_fp="fp")
    (verdict,) = check_all(b.build(), EMPTY, ["single-active-session"])
    return verdict


def test_a_second_stop_answering_the_state_is_valid() -> None:
    verdict = _stops((200, None), (200, None), (409, "idempotency-key-in-flight"), (404, "not-found"))
    assert verdict.status == "valid", verdict
    assert verdict.summary["stops_refused"] == 0


def test_a_stop_refused_with_a_conflict_is_flagged() -> None:
    verdict = _stops((200, None), (409, "conflict"))
    assert verdict.status == "invalid"
    assert [v.details["session_id"] for v in verdict.violations] == ["s1"]


def _assigns(*answers: tuple[int, dict]):
    b = HistoryBuilder()
    for n, (status, result) in enumerate(answers):
        b.call(ASSIGN, 10 * n, 10 * n + 5, status, process=f"p{n}", result=result, appointment_id="a1",
               rep_id="r1", idempotency_key=f"k{n}", payload_fp="fp")
    (verdict,) = check_all(b.build(), EMPTY, ["single-assignment"])
    return verdict


def test_assigning_the_current_rep_again_answered_with_the_assignment_is_valid() -> None:
    ok = {"id": "as1", "appointment_id": "a1", "rep_id": "r1"}
    other = {"problem": "appointment-already-assigned", "assigned_rep_id": "r2"}
    assert _assigns((200, ok), (200, ok), (409, other)).status == "valid"


def test_assigning_the_current_rep_again_refused_409_is_flagged() -> None:
    ok = {"id": "as1", "appointment_id": "a1", "rep_id": "r1"}
    same = {"problem": "appointment-already-assigned", "assigned_rep_id": "r1"}
    verdict = _assigns((200, ok), (409, same))
    assert verdict.status == "invalid"
    assert verdict.summary["same_rep_refused"] == 1


def test_a_409_to_a_stop_whose_body_named_no_problem_is_not_judged() -> None:
    b = HistoryBuilder()
    b.call(SESSION_STOP, 0, 5, 409, result={"detail": "request in flight"}, session_id="s1")
    (verdict,) = check_all(b.build(), EMPTY, ["single-active-session"])
    assert verdict.status == "valid"


def _start_probe_stop_start(probe: str, stop_status: int):
    """s1 started, a probe stops it (answered ``stop_status``), then s2 starts on the same appointment."""
    from stormproof.harness.history.vocabulary import SESSION_START

    b = HistoryBuilder()
    b.call(SESSION_START, 0, 5, 201, process="p0", result={"id": "s1", "appointment_id": "a1"},
           appointment_id="a1", idempotency_key="k0", payload_fp="fp")
    b.call(probe, 10, 15, stop_status, process="p1", result={},
           route="stop", method="POST", path="/api/v1/recordings/sessions/s1/stop")
    b.call(SESSION_START, 20, 25, 201, process="p2", result={"id": "s2", "appointment_id": "a1"},
           appointment_id="a1", idempotency_key="k2", payload_fp="fp")
    (verdict,) = check_all(b.build(), EMPTY, ["single-active-session"])
    return verdict


def test_a_session_a_probe_stopped_is_not_active_any_more() -> None:
    """Probes derived from the API document stop sessions too: no false overlap after one."""
    from stormproof.harness.history.vocabulary import PROBE_IDEMPOTENCY

    assert _start_probe_stop_start(PROBE_IDEMPOTENCY, 200).status == "valid"


def test_a_refused_probe_stop_does_not_hide_an_overlap() -> None:
    from stormproof.harness.history.vocabulary import PROBE

    assert _start_probe_stop_start(PROBE, 404).status == "invalid"


def _assign_probe_undo_assign(probe: str, status: int, method: str, path: str):
    """a1 assigned to r1, a probe sends ``method path`` (answered ``status``), then a1 assigned to r2."""
    from stormproof.harness.history.vocabulary import ASSIGN

    b = HistoryBuilder()
    b.call(ASSIGN, 0, 5, 200, process="p0", result={"id": "as1", "rep_id": "r1"},
           appointment_id="a1", rep_id="r1", idempotency_key="k0", payload_fp="fp1")
    b.call(probe, 10, 15, status, process="p1", result={}, route="undo", method=method, path=path)
    b.call(ASSIGN, 20, 25, 200, process="p2", result={"id": "as2", "rep_id": "r2"},
           appointment_id="a1", rep_id="r2", idempotency_key="k2", payload_fp="fp2")
    (verdict,) = check_all(b.build(), EMPTY, ["single-assignment"])
    return verdict


def test_an_appointment_a_probe_unassigned_may_get_another_rep() -> None:
    """The idempotency probe replays unassigns (seen in smoke, dead-letter-queue weakened): no false second assignee."""
    from stormproof.harness.history.vocabulary import PROBE_IDEMPOTENCY

    verdict = _assign_probe_undo_assign(PROBE_IDEMPOTENCY, 200, "POST", "/api/v1/appointments/a1/unassign")
    assert verdict.status == "valid", verdict.violations
    deleted = _assign_probe_undo_assign(PROBE_IDEMPOTENCY, 204, "DELETE", "/api/v1/appointments/a1")
    assert deleted.status == "valid", deleted.violations


def test_a_refused_or_unrelated_probe_does_not_hide_a_second_assignee() -> None:
    from stormproof.harness.history.vocabulary import PROBE, PROBE_IDEMPOTENCY

    assert _assign_probe_undo_assign(PROBE, 404, "POST", "/api/v1/appointments/a1/unassign").status == "invalid"
    assert _assign_probe_undo_assign(PROBE_IDEMPOTENCY, 200, "POST",
                                     "/api/v1/appointments/a2/unassign").status == "invalid"
    assert _assign_probe_undo_assign(PROBE_IDEMPOTENCY, 200, "PATCH", "/api/v1/appointments/a1").status == "invalid"


def _assign_probe_undo(status: int) -> object:
    from stormproof.harness.history.vocabulary import PROBE_IDEMPOTENCY

    b = HistoryBuilder()
    b.call(ASSIGN, 0, 5, 200, process="p0", result={"id": "as1", "rep_id": "r1"},
           appointment_id="a1", rep_id="r1", idempotency_key="k0", payload_fp="fp1")
    b.call(PROBE_IDEMPOTENCY, 10, 15, status, process="p1", result={}, route="undo", method="POST",
           path="/api/v1/appointments/a1/unassign")
    released = Snapshot.build({"recording_sessions": [], "appointments": [], "appointment_assignments": [
        {"id": "as1", "appointment_id": "a1", "rep_id": "r1", "status": "released"}]})
    (verdict,) = check_all(b.build(), released, ["no-lost-acknowledged-write"])
    return verdict


def test_an_assignment_a_probe_unassigned_is_not_a_lost_write() -> None:
    """Seen on docker smoke with every fix on: the probe's unassign released it, no load unassign did."""
    assert _assign_probe_undo(200).status == "valid"
    refused = _assign_probe_undo(404)  # a refused probe released nothing: the released row is a lost write
    assert refused.status == "invalid" and "no unassign followed it" in refused.violations[0].message


def test_a_stop_refused_400_or_422_as_not_active_is_flagged() -> None:
    """The usual hand-written refusal (HTTPException 400 / a 422 "not active") breaks the promise as a 409 does."""
    for status, problem in ((400, "session-not-active"), (422, None), (410, "gone"), (401, "unauthorized"),
                            (403, "forbidden")):  # the load's token is a tenant user's, and any of them may stop
        verdict = _stops((200, None), (status, problem))
        assert verdict.status == "invalid", (status, problem)
        assert verdict.summary["stops_refused"] == 1
        assert verdict.violations[0].details["status"] == status


def test_stop_refusals_of_the_key_protocol_and_limiter_are_valid() -> None:
    verdict = _stops((200, None), (400, "idempotency-key-invalid"), (422, "idempotency-key-mismatch"),
                     (429, "rate-limited"), (409, "resource-busy"))
    assert verdict.status == "valid", verdict.violations


def _stopped_at_history(*moments: str) -> HistoryBuilder:
    b = HistoryBuilder()
    b.call("session.start", 0, 5, 201, appointment_id="a1", result={"id": "s1"})
    for n, moment in enumerate(moments):
        b.call(SESSION_STOP, 10 * (n + 1), 10 * (n + 1) + 5, 200, process=f"p{n}", session_id="s1",
               idempotency_key=f"k{n}", payload_fp="fp", result={"id": "s1", "stopped_at": moment})
    return b


def _stopped_row(stopped_at: float) -> Snapshot:
    return Snapshot.build({"recording_sessions": [{"id": "s1", "company_id": "c1", "appointment_id": "a1",
                                                   "status": "stopped", "stopped_at": stopped_at}]})


FIRST = "2026-12-01T21:00:00.123456Z"
FIRST_S = 1796158800.123456  # FIRST as epoch seconds, as a snapshot holds it


def test_a_second_stop_that_wrote_a_new_stopped_at_is_flagged() -> None:
    """stopped_at = now() outside the "if active": every stop answers 200 stopped, and re-stamps the row."""
    b = _stopped_at_history(FIRST, "2026-12-01T21:00:01.500000Z")
    (verdict,) = check_all(b.build(), _stopped_row(1796158801.5), ["single-active-session"])
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "stop-restamped" and violation.details["session_id"] == "s1"
    assert verdict.summary["stops_restamped"] == 1


def test_a_stop_answer_that_disagrees_with_the_final_row_is_flagged() -> None:
    b = _stopped_at_history(FIRST)
    (verdict,) = check_all(b.build(), _stopped_row(FIRST_S + 2.0), ["single-active-session"])
    assert verdict.status == "invalid"


def test_stops_that_answer_the_same_stopped_at_as_the_row_are_valid() -> None:
    b = _stopped_at_history(FIRST, FIRST, "2026-12-01T21:00:00.123456+00:00")
    (verdict,) = check_all(b.build(), _stopped_row(FIRST_S), ["single-active-session"])
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["stops_restamped"] == 0
    # The row gone (its appointment deleted): the answers are compared with each other only.
    (verdict,) = check_all(b.build(), Snapshot.build({"recording_sessions": []}), ["single-active-session"])
    assert verdict.status == "valid", verdict.violations


def test_assigning_the_current_rep_again_as_a_new_assignment_is_flagged() -> None:
    """Reassigning the same rep by releasing the current assignment and inserting another: 200 both times,
    one active row at the end, but the second assign ran a second time."""
    first = {"id": "as1", "appointment_id": "a1", "rep_id": "r1"}
    second = {"id": "as2", "appointment_id": "a1", "rep_id": "r1"}
    verdict = _assigns((200, first), (200, second))
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "reassign-replaced"
    assert violation.details["assignments"] == ("as1", "as2")
    assert verdict.summary["same_rep_replaced"] == 1


def test_a_new_assignment_of_the_same_rep_after_an_unassign_or_from_a_replay_is_valid() -> None:
    b = HistoryBuilder()
    b.call(ASSIGN, 0, 5, 200, appointment_id="a1", rep_id="r1", idempotency_key="k0", payload_fp="fp",
           result={"id": "as1", "rep_id": "r1"})
    b.call("appointment.unassign", 10, 15, 200, appointment_id="a1")
    b.call(ASSIGN, 20, 25, 200, appointment_id="a1", rep_id="r1", idempotency_key="k1", payload_fp="fp",
           result={"id": "as2", "rep_id": "r1"})
    b.call(ASSIGN, 30, 35, 200, appointment_id="a1", rep_id="r1", idempotency_key="k0", payload_fp="fp",
           result={"id": "as1", "rep_id": "r1", "replayed": True})
    # An unassign whose answer was lost may have acted at any time after it was sent.
    lost = b.invoke("appointment.unassign", 40, process="p9", appointment_id="a1")
    b.call(ASSIGN, 50, 55, 200, appointment_id="a1", rep_id="r1", idempotency_key="k2", payload_fp="fp",
           result={"id": "as3", "rep_id": "r1"})
    b.complete(lost, 60, None, error="ReadTimeout")
    (verdict,) = check_all(b.build(), EMPTY, ["single-assignment"])
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["same_rep_replaced"] == 0


def test_an_assign_answered_2xx_with_another_reps_assignment_is_flagged() -> None:
    """"Already assigned? answer the current assignment": the caller asking for r2 is told 200 with r1's."""
    b = HistoryBuilder()
    b.call(ASSIGN, 0, 5, 200, appointment_id="a1", rep_id="r1", idempotency_key="k0", payload_fp="fp1",
           result={"id": "as1", "rep_id": "r1"})
    _, ack = b.call(ASSIGN, 10, 15, 200, process="p2", appointment_id="a1", rep_id="r2", idempotency_key="k1",
                    payload_fp="fp2", result={"id": "as1", "rep_id": "r1"})
    (verdict,) = check_all(b.build(), EMPTY, ["single-assignment"])
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "assign-other-rep" and violation.details["answered_rep_id"] == "r1"
    assert verdict.summary["other_rep_answered"] == 1


def _answered(start: dict, *stops: dict, stop_first: bool = False):
    """A start of appointment a1 answered ``start``, then stops of its session s1 answered ``stops``."""
    b = HistoryBuilder()
    if stop_first:  # a stop sent while the start was in flight
        b.call(SESSION_STOP, 2, 4, 200, process="p9", session_id="s1", idempotency_key="k9", payload_fp="fp",
               result={"id": "s1", "status": "stopped"})
    b.call("session.start", 0, 5, 201, appointment_id="a1", result={"id": "s1", **start})
    for n, result in enumerate(stops):
        b.call(SESSION_STOP, 10 * (n + 1), 10 * (n + 1) + 5, 200, process=f"p{n}", session_id="s1",
               idempotency_key=f"k{n}", payload_fp="fp", result=result)
    (verdict,) = check_all(b.build(), EMPTY, ["single-active-session"])
    return verdict


def test_answers_that_describe_the_session_are_valid() -> None:
    verdict = _answered({"appointment_id": "a1", "status": "recording"},
                        {"id": "s1", "appointment_id": "a1", "status": "stopped"}, {"id": "s1"})
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["answers_judged"] == 3


def test_a_stop_answered_as_still_recording_is_flagged() -> None:
    """The stop's answer built from the row as loaded before the stop (weakening stop-answers-stale)."""
    verdict = _answered({"status": "recording"}, {"id": "s1", "status": "stopped"}, {"id": "s1", "status": "recording"})
    assert [v.details["type"] for v in verdict.violations] == ["stop-answered-active"]


def test_a_stop_answered_with_another_status_than_the_rows_is_flagged() -> None:
    """Whatever a backend calls a stopped session, the stop answers what the row keeps."""
    b = HistoryBuilder()
    b.call("session.start", 0, 5, 201, appointment_id="a1", result={"id": "s1"})
    b.call(SESSION_STOP, 10, 15, 200, session_id="s1", idempotency_key="k1", payload_fp="fp",
           result={"id": "s1", "status": "ended"})
    b.call(SESSION_STOP, 20, 25, 200, process="p2", session_id="s1", idempotency_key="k2", payload_fp="fp",
           result={"id": "s1", "status": "analyzed"})
    row = Snapshot.build({"recording_sessions": [{"id": "s1", "company_id": "c1", "appointment_id": "a1",
                                                  "status": "ended"}]})
    (verdict,) = check_all(b.build(), row, ["single-active-session"])
    assert [(v.details["type"], v.details["status"]) for v in verdict.violations] == [
        ("stop-answered-active", "analyzed")]


def test_answers_naming_another_session_or_appointment_are_flagged() -> None:
    verdict = _answered({"appointment_id": "a2"}, {"id": "s2", "status": "stopped"},
                        {"id": "s1", "appointment_id": "a3", "status": "stopped"})
    assert sorted(v.details["type"] for v in verdict.violations) == [
        "answered-other-appointment", "stop-answered-other", "stop-answered-other"]


def test_a_start_answered_stopped_is_flagged_unless_a_stop_was_sent_before_the_answer() -> None:
    assert [v.details["type"] for v in _answered({"status": "stopped"}).violations] == ["start-answered-inactive"]
    assert _answered({"status": "stopped"}, stop_first=True).status == "valid"
