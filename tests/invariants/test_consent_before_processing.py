"""consent-before-processing on hand-made final states: known-bad flagged, known-good valid, missing unknown."""

from stormproof.harness.history import History
from stormproof.harness.invariants import Snapshot, check_all

NAME = "consent-before-processing"


def _run(**tables: object):
    (verdict,) = check_all(History(()), Snapshot.build(tables), [NAME])  # type: ignore[arg-type]
    return verdict


def _consent(cid: str, appointment: str, scope: str, at: float) -> dict:
    return {"id": f"{appointment}-{scope}", "company_id": cid, "appointment_id": appointment, "scope": scope,
            "granted_at": at}


def _session(sid: str, appointment: str, at: float, cid: str = "c1") -> dict:
    return {"id": sid, "company_id": cid, "appointment_id": appointment, "started_by": "u1", "status": "stopped",
            "source": "sessions", "created_at": at, "stopped_at": None}


def _call(call_id: str, appointment: str | None, at: float, cid: str = "c1") -> dict:
    return {"id": call_id, "company_id": cid, "appointment_id": appointment, "status": "completed",
            "lead_score": 1, "outcome": "won", "created_at": at}


def _analysis(aid: str, call_id: str, cid: str = "c1") -> dict:
    return {"id": aid, "company_id": cid, "call_id": call_id, "shunya_job_id": f"j-{aid}", "output_hash": "h",
            "result": {}, "applied_by": "webhook"}


GOOD = {
    "consents": [_consent("c1", "a1", "recording", 10.0), _consent("c1", "a1", "analysis", 10.0)],
    "recording_sessions": [_session("s1", "a1", 20.0)],
    "calls": [_call("k1", "a1", 30.0), _call("k2", None, 5.0)],
    "call_analyses": [_analysis("n1", "k1"), _analysis("n2", "k2")],
}


def test_processing_after_consent_is_valid() -> None:
    verdict = _run(**GOOD)
    assert verdict.status == "valid", verdict
    assert verdict.summary["sessions"] == 1 and verdict.summary["analyses"] == 1  # k2 has no appointment


def test_processing_without_consent_is_flagged() -> None:
    verdict = _run(**{**GOOD, "consents": [_consent("c1", "a1", "analysis", 10.0)]})
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "recorded-without-consent" and violation.details["session_id"] == "s1"


def test_a_consent_of_the_other_scope_or_tenant_does_not_count() -> None:
    verdict = _run(**{**GOOD, "consents": [_consent("c1", "a1", "recording", 10.0),
                                           _consent("c2", "a1", "analysis", 10.0)]})
    assert [v.details["type"] for v in verdict.violations] == ["analysed-without-consent"]
    assert verdict.violations[0].details["call_id"] == "k1"


def test_consent_granted_after_processing_is_flagged() -> None:
    verdict = _run(**{**GOOD, "consents": [_consent("c1", "a1", "recording", 25.0),
                                           _consent("c1", "a1", "analysis", 31.0)]})
    assert sorted(v.details["type"] for v in verdict.violations) == [
        "analysed-without-consent", "recorded-without-consent"]
    assert "after processing began" in verdict.violations[0].message


def test_uncaptured_consents_are_unknown_not_valid() -> None:
    assert _run(**{k: v for k, v in GOOD.items() if k != "consents"}).status == "unknown"


def test_each_violation_cites_the_request_that_created_what_it_names() -> None:
    """The report shows it and `stormproof reproduce` replays it: a violation with no request has nothing to replay."""
    from tests.invariants.builders import HistoryBuilder

    b = HistoryBuilder()
    start, started = b.call("session.start", 0, 5, 201, appointment_id="a1", result={"id": "s1"})
    submit, submitted = b.call("call.submit", 6, 8, 202, appointment_id="a1", result={"id": "k1"})
    b.call("session.start", 9, 10, 409, appointment_id="a1")  # a refusal created nothing
    history = b.build()
    (verdict,) = check_all(history, Snapshot.build({**GOOD, "consents": []}), [NAME])  # type: ignore[arg-type]
    cited = {v.details["type"]: v.ops for v in verdict.violations}
    assert cited == {"recorded-without-consent": (b.at(start), b.at(started)),
                     "analysed-without-consent": (b.at(submit), b.at(submitted))}
