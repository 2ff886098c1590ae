"""single-assignment judges double booking in the history (plan A3): one rep, two overlapping windows, at once."""

from __future__ import annotations

from stormproof.harness.history import vocabulary as v
from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder

HOUR = 3600.0


def _appointment(aid: str, starts_h: float, hours: float = 2) -> dict:
    return {"id": aid, "company_id": "c1", "title": "t", "starts_at": starts_h * HOUR,
            "ends_at": (starts_h + hours) * HOUR, "status": "scheduled", "assigned_rep_id": None}


# a and b overlap (0-2 h and 1-3 h); c (6-8 h) overlaps neither.
APPOINTMENTS = [_appointment("a", 0), _appointment("b", 1), _appointment("c", 6)]


def _assign(b: HistoryBuilder, at: float, appointment: str, rep: str, status: int, problem: str | None = None) -> None:
    result = {"id": f"as-{appointment}-{at}", "rep_id": rep} if status == 200 else {"problem": problem}
    b.call(v.ASSIGN, at, at + 5, status, result=result, appointment_id=appointment, rep_id=rep, overlap_pair=True)


def _run(b: HistoryBuilder):
    snapshot = Snapshot.build({"appointments": APPOINTMENTS, "appointment_assignments": []})
    (verdict,) = check_all(b.build(), snapshot, ["single-assignment"])  # type: ignore[arg-type]
    return verdict


def test_one_rep_on_overlapping_windows_one_at_a_time_passes() -> None:
    b = HistoryBuilder()
    _assign(b, 0, "a", "r1", 200)
    _assign(b, 0, "b", "r1", 409, "rep-double-booked")      # the race: one held, the other refused
    _assign(b, 20, "c", "r1", 200)                           # a window that overlaps neither
    b.call(v.UNASSIGN, 30, 35, 200, appointment_id="a")
    _assign(b, 40, "b", "r1", 200)                           # a was released first
    _assign(b, 42, "a", "r3", 200)
    _assign(b, 50, "a", "r2", 409, "appointment-already-assigned")  # r3 holds it
    verdict = _run(b)
    assert verdict.status == "valid", [x.message for x in verdict.violations]


def test_one_rep_holding_overlapping_windows_and_wrong_refusals_are_flagged() -> None:
    b = HistoryBuilder()
    _assign(b, 0, "a", "r1", 200)
    _assign(b, 0, "b", "r1", 200)                            # both acknowledged at once: double booked
    b.call(v.UNASSIGN, 30, 35, 200, appointment_id="b")      # undone later: the history still shows it
    _assign(b, 40, "c", "r1", 422, "validation")             # a well-formed assign refused
    verdict = _run(b)
    assert sorted(x.details["type"] for x in verdict.violations) == ["assign-wrong-status", "rep-double-booked"]
    assert verdict.summary["double_booked"] == 1


def _refusals(*events: tuple) -> object:
    """Assigns and unassigns in order: ("assign", at, appointment, rep, status, problem) or ("unassign", at, appt)."""
    b = HistoryBuilder()
    for event in events:
        if event[0] == "assign":
            _assign(b, *event[1:])
        else:
            b.call(v.UNASSIGN, event[1], event[1] + 5, 200, appointment_id=event[2])
    return _run(b)


def test_a_double_booked_refusal_is_explained_by_an_overlapping_assignment_that_may_hold() -> None:
    # r1 holds a: refused b (overlapping) is explained; so is one while a's assign is still in flight (same start)
    assert _refusals(("assign", 0, "a", "r1", 200), ("assign", 10, "b", "r1", 409, "rep-double-booked")).status == "valid"
    assert _refusals(("assign", 0, "a", "r1", 200), ("assign", 0, "b", "r1", 409, "rep-double-booked")).status == "valid"
    # the unassign of a was answered, but only after the refused request began: a may have held still
    assert _refusals(("assign", 0, "a", "r1", 200), ("unassign", 8, "a"),
                     ("assign", 10, "b", "r1", 409, "rep-double-booked")).status == "valid"


def test_a_double_booked_refusal_of_a_free_rep_is_flagged() -> None:
    """Released before (as a check that counts released assignments refuses), or never held anything overlapping."""
    released = _refusals(("assign", 0, "a", "r1", 200), ("unassign", 10, "a"),
                         ("assign", 20, "b", "r1", 409, "rep-double-booked"))
    assert released.status == "invalid"
    assert [x.details["type"] for x in released.violations] == ["double-booked-unexplained"]
    # r1 holds c (6-8 h), which overlaps neither a nor b; r2 holds a, another rep's assignment explains nothing
    free = _refusals(("assign", 0, "c", "r1", 200), ("assign", 0, "a", "r2", 200),
                     ("assign", 10, "b", "r1", 409, "rep-double-booked"))
    assert [x.details["type"] for x in free.violations] == ["double-booked-unexplained"]


def test_touching_windows_do_not_explain_a_double_booked_refusal() -> None:
    """[0 h, 1 h) and [1 h, 2 h) only touch: one rep may hold both."""
    touching = [_appointment("p", 10, 1), _appointment("q", 11, 1)]
    b = HistoryBuilder()
    _assign(b, 0, "p", "r1", 200)
    _assign(b, 10, "q", "r1", 409, "rep-double-booked")
    snapshot = Snapshot.build({"appointments": APPOINTMENTS + touching, "appointment_assignments": []})
    (verdict,) = check_all(b.build(), snapshot, ["single-assignment"])  # type: ignore[arg-type]
    assert [x.details["type"] for x in verdict.violations] == ["double-booked-unexplained"]


def test_an_already_assigned_refusal_while_the_appointment_was_free_is_flagged() -> None:
    """Known bad: a assigned to r1, then unassigned (acknowledged), then r2 refused 409
    appointment-already-assigned with no other write of a in flight: the check counted the released one."""
    b = HistoryBuilder()
    _assign(b, 0, "a", "r1", 200)
    b.call(v.UNASSIGN, 10, 15, 200, appointment_id="a")
    _assign(b, 20, "a", "r2", 409, "appointment-already-assigned")
    verdict = _run(b)
    assert verdict.status == "invalid"
    assert [x.details["type"] for x in verdict.violations] == ["already-assigned-unexplained"]
    assert verdict.violations[0].details["rep_id"] == "r2"
    # Cited: the assign of r1 (its answer), the unassign that released it (its answer), the refused assign.
    assert len(verdict.violations[0].ops) == 4
    assert verdict.summary["already_assigned_refusals_unexplained"] == 1


def test_an_already_assigned_refusal_that_may_be_explained_passes() -> None:
    """Known good: c refused before any write of it (the seed's state is not known); a refused while r1 held it;
    b refused while an assign of r3 was in flight; c refused after an unassign whose answer was lost; a refused
    under a key first sent before a's unassign; a replayed refusal."""
    b = HistoryBuilder()
    _assign(b, 0, "c", "r2", 409, "appointment-already-assigned")
    _assign(b, 10, "a", "r1", 200)
    _assign(b, 20, "a", "r2", 409, "appointment-already-assigned")
    _assign(b, 30, "b", "r3", 200)
    _assign(b, 32, "b", "r2", 409, "appointment-already-assigned")       # sent while r3's assign ran
    b.call(v.ASSIGN, 40, 45, 200, appointment_id="c", rep_id="r4", result={"id": "as-c", "rep_id": "r4"})
    b.call(v.UNASSIGN, 50, 60, None, appointment_id="c")                   # its answer was lost
    _assign(b, 70, "c", "r2", 409, "appointment-already-assigned")
    b.call(v.ASSIGN, 80, 81, None, appointment_id="a", rep_id="r5", idempotency_key="k1")  # first send: lost
    b.call(v.UNASSIGN, 90, 95, 200, appointment_id="a")
    b.call(v.ASSIGN, 100, 105, 409, appointment_id="a", rep_id="r5", idempotency_key="k1",
           result={"problem": "appointment-already-assigned"})           # its resend: r1 held a at 80
    b.call(v.ASSIGN, 110, 115, 409, appointment_id="a", rep_id="r6",
           result={"problem": "appointment-already-assigned", "replayed": True})
    verdict = _run(b)
    assert "already-assigned-unexplained" not in [x.details["type"] for x in verdict.violations], \
        [x.message for x in verdict.violations]
    assert verdict.summary["already_assigned_refusals_unexplained"] == 0
