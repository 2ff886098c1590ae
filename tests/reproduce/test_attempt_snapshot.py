"""An attempt is judged on its own rows only: earlier attempts on the same stack are not its concern."""

from __future__ import annotations

from stormproof.harness.invariants import Snapshot
from stormproof.harness.reproduce.replay import _only


def test_the_stubs_completed_jobs_are_restricted_to_the_attempts_own_jobs() -> None:
    jobs = [{"id": "r1", "company_id": "earlier", "call_id": "c1", "shunya_job_id": "shj_earlier"},
            {"id": "r2", "company_id": "mine", "call_id": "c2", "shunya_job_id": "shj_mine"}]
    snapshot = Snapshot.build({"shunya_jobs": jobs, "call_analyses": []}, completed_jobs=["shj_earlier", "shj_mine"])
    only = _only(snapshot, {"mine"})
    assert only.completed_jobs == frozenset({"shj_mine"})
    assert [row["id"] for row in only.shunya_jobs or ()] == ["r2"]


def test_without_job_rows_the_completed_jobs_are_left_as_they_are() -> None:
    snapshot = Snapshot.build({"call_analyses": []}, completed_jobs=["shj_1"])
    assert _only(snapshot, {"mine"}).completed_jobs == frozenset({"shj_1"})
