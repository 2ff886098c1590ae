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
