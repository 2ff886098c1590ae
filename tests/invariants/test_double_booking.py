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
    _assign(b, 50, "a", "r2", 409, "appointment-already-assigned")
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
