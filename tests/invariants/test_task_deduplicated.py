"""task-deduplicated: overlapping tasks for one work item are flagged, back-to-back ones are not; a refresh's
answer names the poll it queued or found in flight."""

from __future__ import annotations

import pytest

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


# -- refresh answers: deduplicated names a poll in flight while the request ran, false the poll it queued ------

def _refresh_run(answers: list[tuple[float, float, dict]], *, shift: float = 0.0, tasks: list[dict] | None = None,
                 calls_kept: bool = True):
    """Two submitted calls (c1, c2; their created_at puts the app's clock ``shift`` s ahead of the load's),
    job j1 of c1; poll t0 of j1 ran from 0.2 s to 2 s (load clock); then the given refreshes of c1."""
    from stormproof.harness.history.vocabulary import CALL_REFRESH, CALL_SUBMIT
    from tests.invariants.builders import HistoryBuilder

    b = HistoryBuilder()
    b.call(CALL_SUBMIT, 0, 100, 202, result={"id": "c1"}, appointment_id="a1", idempotency_key="k1")
    b.call(CALL_SUBMIT, 1000, 1100, 202, result={"id": "c2"}, appointment_id="a1", idempotency_key="k2")
    for start, end, result in answers:
        b.call(CALL_REFRESH, start, end, 202, result=result, call_id="c1")
    at = 1e9 + shift
    calls = [{"id": "c1", "company_id": "c1", "created_at": at + 0.05},
             {"id": "c2", "company_id": "c1", "created_at": at + 1.05}] if calls_kept else []
    ledger = tasks if tasks is not None else [{"task_id": "t0", "dedupe_key": "j1", "created_at": 0.2, "finished_at": 2.0}]
    rows = [{"name": "shunya.poll", "company_id": "c1", "state": "succeeded", "attempts": 1, **task,
             "created_at": at + task["created_at"],
             "finished_at": None if task["finished_at"] is None else at + task["finished_at"]} for task in ledger]
    snapshot = Snapshot.build({"task_records": rows, "calls": calls,
                               "shunya_jobs": [{"id": "j1", "company_id": "c1", "call_id": "c1"}] if calls_kept else []})
    (verdict,) = check_all(b.build(), snapshot, ["task-deduplicated"])
    return verdict


@pytest.mark.parametrize("shift", [0.0, 3600.0, -7.5], ids=["same-clock", "app-an-hour-ahead", "app-behind"])
def test_true_refresh_answers_pass_on_any_clock(shift: float) -> None:
    tasks = [{"task_id": "t0", "dedupe_key": "j1", "created_at": 0.2, "finished_at": 2.0},
             {"task_id": "t1", "dedupe_key": "j1", "created_at": 5.05, "finished_at": None}]
    verdict = _refresh_run([(1500, 1600, {"task_id": "t0", "deduplicated": True}),  # t0 still in flight
                            (1950, 2300, {"task_id": "t0", "deduplicated": True}),  # t0 ended while it ran
                            (5000, 5100, {"task_id": "t1", "deduplicated": False}),  # queued t1
                            (6000, 6100, {"task_id": "t1", "deduplicated": True})], shift=shift, tasks=tasks)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["refreshes_judged"] == 4


@pytest.mark.parametrize("shift", [0.0, 3600.0], ids=["same-clock", "app-an-hour-ahead"])
def test_a_refresh_deduplicated_against_a_finished_poll_is_caught(shift: float) -> None:
    verdict = _refresh_run([(5000, 5100, {"task_id": "t0", "deduplicated": True})], shift=shift)
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "refresh-answer-untrue"
    assert "had ended" in violation.message and "no poll was queued" in violation.message


def test_a_refresh_that_queued_nothing_new_is_caught() -> None:
    """deduplicated: false must name a task created while the request ran, not an old one."""
    verdict = _refresh_run([(5000, 5100, {"task_id": "t0", "deduplicated": False})])
    assert verdict.status == "invalid"
    assert "before the refresh was sent" in verdict.violations[0].message


def test_a_refresh_naming_an_unknown_or_foreign_task_is_caught() -> None:
    tasks = [{"task_id": "t0", "dedupe_key": "j1", "created_at": 0.2, "finished_at": 2.0},
             {"task_id": "t9", "dedupe_key": "j9", "created_at": 5.05, "finished_at": None}]
    verdict = _refresh_run([(5000, 5100, {"task_id": "nope", "deduplicated": False}),
                            (5000, 5100, {"task_id": "t9", "deduplicated": False})], tasks=tasks)
    assert verdict.status == "invalid"
    messages = sorted(v.message for v in verdict.violations)
    assert "never held" in messages[0] and "not the poll of the call's job j1" in messages[1]


def test_a_deleted_tenants_refreshes_are_not_judged() -> None:
    """Deleting a tenant takes its calls and its task ledger: an answer naming a task gone with them is not a lie."""
    verdict = _refresh_run([(5000, 5100, {"task_id": "t0", "deduplicated": True})], tasks=[], calls_kept=False)
    assert verdict.status == "valid"
    assert verdict.summary["refreshes_judged"] == 0
