"""dead-letter-accounting judges manual retries of dead letters (plan C2): each retried once, then 409."""

from __future__ import annotations

from stormproof.harness.history import vocabulary as v
from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder

NAME = "dead-letter-accounting"


def _letter(lid: str, status: str, retried_task: str | None = None) -> dict:
    return {"id": lid, "company_id": "c1", "task_id": f"t-{lid}", "task_name": "shunya.poll", "error": "boom",
            "attempts": 3, "status": status, "retried_task_id": retried_task}


def _record(task: str, state: str = "succeeded") -> dict:
    return {"task_id": task, "name": "shunya.poll", "company_id": "c1", "dedupe_key": None, "state": state,
            "attempts": 1, "created_at": 0.0, "finished_at": 1.0}


def _run(b: HistoryBuilder, letters: list[dict], records: list[dict]):
    snapshot = Snapshot.build({"dead_letters": letters, "task_records": records})
    (verdict,) = check_all(b.build(), snapshot, [NAME])  # type: ignore[arg-type]
    return verdict


def _retry(b: HistoryBuilder, at: float, letter: str, status: int | None):
    b.call(v.DEAD_LETTER_RETRY, at, at + 5, status, result={"id": letter} if status and status < 300 else None,
           dead_letter_id=letter)


def test_each_letter_retried_once_then_409_passes() -> None:
    b = HistoryBuilder()
    _retry(b, 0, "d1", 200)
    _retry(b, 10, "d1", 409)      # the same letter again: already retried
    _retry(b, 20, "d2", 200)
    _retry(b, 21, "d2", 409)      # both at once: one ran, the other refused
    _retry(b, 30, "d3", 429)      # rate limited: counted, not judged
    _retry(b, 40, "d3", None)     # no answer: not judged
    _retry(b, 50, "gone", 404)    # a letter that is not there
    verdict = _run(b, [_letter("d1", "retried", "r1"), _letter("d2", "retried", "r2"), _letter("d3", "dead")],
                   [_record("r1"), _record("r2"), _record("t-d1", "dead_lettered"),
                    _record("t-d2", "dead_lettered"), _record("t-d3", "dead_lettered")])
    assert verdict.status == "valid", [x.message for x in verdict.violations]
    assert verdict.summary["manual_retries"] == 5


def test_a_second_run_a_lost_retry_and_wrong_refusals_are_flagged() -> None:
    b = HistoryBuilder()
    _retry(b, 0, "d1", 200)
    _retry(b, 10, "d1", 200)      # retried again: the task ran twice
    _retry(b, 20, "d2", 200)      # answered, but the letter ends dead and its task is not in the ledger
    _retry(b, 30, "d3", 409)      # "already retried", yet never retried
    _retry(b, 40, "d3", 404)      # "not found" for a letter that exists
    _retry(b, 50, "d3", 422)      # no body to be wrong about
    verdict = _run(b, [_letter("d1", "retried", "r1"), _letter("d2", "dead"), _letter("d3", "dead")],
                   [_record("r1"), _record("t-d1", "dead_lettered"), _record("t-d2", "dead_lettered"),
                    _record("t-d3", "dead_lettered")])
    assert sorted(x.details["type"] for x in verdict.violations) == [
        "dead-letter-retried-twice", "dead-letter-retry-unaccounted", "dead-letter-retry-wrong-status",
        "dead-letter-retry-wrong-status", "dead-letter-retry-wrong-status"]


def _list(b: HistoryBuilder, at: float, answered: int | None, statuses: set[str] | None, **args: object) -> None:
    invoke = b.invoke(v.DEAD_LETTER_LIST, at, **args)  # args.status is the filter, not the answer's status
    b.complete(invoke, at + 5, answered, **({"statuses": frozenset(statuses)} if statuses is not None else {}))


def test_a_list_asked_for_dead_letters_that_holds_a_retried_one_is_flagged() -> None:
    """Known bad: ?status=dead answered with a retried letter among the dead (the filter not applied). Known good:
    only dead ones, an empty list, a list asked without a filter, a refusal, no answer."""
    b = HistoryBuilder()
    _list(b, 0, 200, {"dead"}, status="dead")
    _list(b, 10, 200, None, status="dead")  # nothing listed: judges nothing
    _list(b, 20, 200, {"dead", "retried"})  # no filter asked
    _list(b, 30, 429, None, status="dead")
    _list(b, 40, None, None, status="dead")
    good = _run(b, [], [])
    assert not [x for x in good.violations if x.details["type"] == "dead-letter-list-unfiltered"]
    assert good.summary["dead_letter_lists_judged"] == 1
    _list(b, 50, 200, {"dead", "retried"}, status="dead")
    bad = _run(b, [], [])
    (violation,) = [x for x in bad.violations if x.details["type"] == "dead-letter-list-unfiltered"]
    assert violation.details["listed"] == ["retried"] and bad.summary["dead_letter_lists_judged"] == 2
