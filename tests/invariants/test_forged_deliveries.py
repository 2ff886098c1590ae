"""job-applied-once judges the webhook deliveries Shunya did not sign (plan A1): refused 401, nothing applied."""

from __future__ import annotations

from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder


def _run(b: HistoryBuilder, *analyses: dict):
    (verdict,) = check_all(b.build(), Snapshot(call_analyses=analyses), ["job-applied-once"])  # type: ignore[arg-type]
    return verdict


def _analysis(job: str, output: str) -> dict:
    return {"id": f"n-{job}", "company_id": "c1", "call_id": "call1", "shunya_job_id": job, "output_hash": output,
            "applied_by": "webhook"}


def _forged(b: HistoryBuilder, at: float, status: int | None, bad: str, job: str = "j1") -> None:
    b.call("webhook.deliver", at, at + 1, status, job_id=job, payload_fp=f"forged-{job}-{bad}", bad_signature=bad)


def test_forged_deliveries_accepted_refused_wrongly_or_applied_are_flagged() -> None:
    b = HistoryBuilder()
    _forged(b, 0, 202, "missing")          # accepted without a signature
    _forged(b, 10, 422, "stale", "j2")     # the body was judged before its sender: not 401
    _forged(b, 20, 401, "wrong", "j3")     # refused right, yet its forged result is in the final state
    verdict = _run(b, _analysis("j1", "h1"), _analysis("j2", "h2"), _analysis("j3", "forged-j3-wrong"))
    assert sorted(v.details["type"] for v in verdict.violations) == [
        "forged-delivery-accepted", "forged-delivery-wrong-status", "forged-result-applied"]
    assert verdict.summary["forged_deliveries"] == 3


def test_forged_deliveries_refused_401_pass() -> None:
    b = HistoryBuilder()
    b.call("webhook.deliver", 0, 1, 200, job_id="j1", payload_fp="h1")  # Shunya's own, signed: applied
    for at, bad in ((2, "missing"), (4, "stale"), (6, "wrong")):
        _forged(b, at, 401, bad)
    _forged(b, 8, None, "wrong")          # no answer: counted, not judged
    _forged(b, 10, 429, "missing")        # rate limited: counted, not judged
    verdict = _run(b, _analysis("j1", "h1"))
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["forged_deliveries"] == 5


def test_a_signed_delivery_refused_401_is_flagged() -> None:
    """Shunya's own deliveries, one compact and one laid out with indentation (the signature covers the raw
    bytes): the second refused 401, as by an app that checks the signature against its re-serialised body."""
    b = HistoryBuilder()
    b.call("webhook.deliver", 0, 1, 200, job_id="j1", payload_fp="h1")
    _, refused = b.call("webhook.deliver", 2, 3, 401, job_id="j2", payload_fp="h2", spaced=True)
    b.call("webhook.deliver", 4, 5, 200, job_id="j3", payload_fp="h3", spaced=True)
    verdict = _run(b, _analysis("j1", "h1"), _analysis("j3", "h3"))
    assert [(v.details["type"], v.details["spaced"]) for v in verdict.violations] == [
        ("signed-delivery-refused", True)]
    assert verdict.violations[0].ops == (b.at(refused - 1), b.at(refused))


def test_future_dated_and_malformed_timestamps_are_judged_like_any_forgery() -> None:
    """A delivery dated ahead accepted (a window checked one way) and a malformed timestamp answered 500 (parsed
    unguarded) are flagged; both refused 401 pass (plan A1: rows webhook-window-both-ways, -timestamp-malformed)."""
    b = HistoryBuilder()
    _forged(b, 0, 200, "future")
    _forged(b, 10, 500, "malformed", "j2")
    verdict = _run(b, _analysis("j1", "forged-j1-future"))
    assert sorted((v.details["type"], v.details.get("bad_signature")) for v in verdict.violations) == [
        ("forged-delivery-accepted", "future"), ("forged-delivery-wrong-status", "malformed"),
        ("forged-result-applied", None)]
    good = HistoryBuilder()
    _forged(good, 0, 401, "future")
    _forged(good, 10, 401, "malformed", "j2")
    assert _run(good).status == "valid"


def test_a_delayed_signed_delivery_refused_401_is_flagged() -> None:
    """Shunya's delivery signed two minutes before it was sent (within the contract's 300 s window): refused
    401, as by an app whose window is far tighter than the contract's, is flagged; accepted, it passes."""
    b = HistoryBuilder()
    _, refused = b.call("webhook.deliver", 0, 1, 401, job_id="j1", payload_fp="h1", delayed_s=120)
    verdict = _run(b)
    assert [(v.details["type"], v.details["delayed_s"]) for v in verdict.violations] == [
        ("signed-delivery-refused", 120)]
    good = HistoryBuilder()
    good.call("webhook.deliver", 0, 1, 200, job_id="j1", payload_fp="h1", delayed_s=120)
    assert _run(good, _analysis("j1", "h1")).status == "valid"
