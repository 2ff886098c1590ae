"""job-applied-once judges signed deliveries that say completed without their result or hash (plan A1)."""

from __future__ import annotations

from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder


def _run(b: HistoryBuilder, *analyses: dict, checker: str = "job-applied-once"):
    (verdict,) = check_all(b.build(), Snapshot(call_analyses=analyses), [checker])  # type: ignore[arg-type]
    return verdict


def _analysis(job: str, output: object, result: object = None) -> dict:
    return {"id": f"n-{job}", "company_id": "c1", "call_id": f"call-{job}", "shunya_job_id": job,
            "output_hash": output, "result": {"lead_score": 50} if result is None else result,
            "applied_by": "webhook"}


def _incomplete(b: HistoryBuilder, at: float, status: int | None, missing: str, job: str, answer: str | None = None):
    return b.call("webhook.deliver", at, at + 1, status, job_id=job, payload_fp=f"h-{job}", incomplete=missing,
                  **({"result": {"status": answer}} if answer else {}))


def test_incomplete_deliveries_applied_are_flagged_by_answer_and_by_final_state() -> None:
    b = HistoryBuilder()
    _incomplete(b, 0, 200, "no-result", "j1", answer="applied")   # told applied: the empty result was taken in
    _incomplete(b, 10, 422, "no-hash", "j2")                      # refused right, yet the job holds no hash
    _incomplete(b, 20, 422, "no-result", "j3")                    # refused right, yet its analysis is empty
    verdict = _run(b, _analysis("j1", "h-j1", result={}), _analysis("j2", "None"), _analysis("j3", "h-j3", {}))
    assert sorted(v.details["type"] for v in verdict.violations) == [
        "incomplete-delivery-applied", "incomplete-result-applied", "incomplete-result-applied",
        "incomplete-result-applied"]
    assert verdict.summary["incomplete_deliveries"] == 3


def test_incomplete_deliveries_refused_or_found_duplicate_pass() -> None:
    b = HistoryBuilder()
    b.call("webhook.deliver", 0, 1, 200, job_id="j1", payload_fp="h-j1", result={"status": "applied"})
    _incomplete(b, 2, 422, "no-result", "j1")
    _incomplete(b, 4, 400, "no-hash", "j2")
    _incomplete(b, 6, 200, "no-hash", "j1", answer="duplicate")  # the job found applied before the body was read
    _incomplete(b, 8, None, "no-result", "j3")                   # no answer: counted, not judged
    verdict = _run(b, _analysis("j1", "h-j1"))
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["incomplete_deliveries"] == 4


def test_an_incomplete_delivery_refused_422_is_an_explained_refusal() -> None:
    b = HistoryBuilder()
    _incomplete(b, 0, 422, "no-result", "j1")
    b.call("webhook.deliver", 2, 3, 422, job_id="j2", payload_fp="h-j2")  # a whole delivery refused: unexplained
    verdict = _run(b, checker="refusals-explained")
    assert [(v.details["type"], v.ops) for v in verdict.violations] == [("refusal-outside-contract", (2, 3))]
