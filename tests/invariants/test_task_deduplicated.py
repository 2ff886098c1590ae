"""task-deduplicated: overlapping tasks for one work item are flagged; back-to-back ones are not."""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.invariants import Snapshot, check_all


def _snapshot(*records: tuple[str, str | None, float, float | None]) -> Snapshot:
    rows = [
        {"task_id": task_id, "name": "shunya.poll", "company_id": "c1", "dedupe_key": key, "state": "succeeded",
         "attempts": 1, "created_at": created, "finished_at": finished}
        for task_id, key, created, finished in ((f"t{i}", *r) for i, r in enumerate(records))
    ]
    return Snapshot.build({"task_records": rows})


def _verdict(snapshot: Snapshot):
    (verdict,) = check_all(History(()), snapshot, ["task-deduplicated"])
    return verdict


def test_sequential_tasks_for_one_item_are_fine() -> None:
    verdict = _verdict(_snapshot(("job1", 0.0, 1.0), ("job1", 1.5, 2.0), ("job2", 0.5, 3.0), (None, 0.1, 0.2)))
    assert verdict.status == "valid"
    assert verdict.summary["work_items"] == 2


def test_overlapping_tasks_for_one_item_are_a_violation() -> None:
    verdict = _verdict(_snapshot(("job1", 0.0, 2.0), ("job1", 1.0, 3.0), ("job1", 2.5, None)))
    assert verdict.status == "invalid"
    assert verdict.summary["violations"] == 2
    assert {v.details["tasks"] for v in verdict.violations} == {("t0", "t1"), ("t1", "t2")}


def test_a_task_still_in_flight_overlaps_everything_after_it() -> None:
    verdict = _verdict(_snapshot(("job1", 0.0, None), ("job1", 5.0, 6.0)))
    assert verdict.status == "invalid"


def test_missing_lifetimes_are_unknown_not_valid() -> None:
    snapshot = Snapshot.build({"task_records": [{"task_id": "t", "name": "n", "company_id": "c", "dedupe_key": "k",
                                                 "state": "queued", "attempts": 0}]})
    verdict = _verdict(snapshot)
    assert verdict.status == "unknown"
