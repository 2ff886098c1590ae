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


def _call(call_id: str, appointment: str | None, at: float, cid: str = "c1", session: str | None = None) -> dict:
    return {"id": call_id, "company_id": cid, "appointment_id": appointment, "recording_session_id": session,
            "status": "completed", "lead_score": 1, "outcome": "won", "created_at": at}


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


def test_a_call_named_by_its_session_alone_needs_the_sessions_appointment_analysis_consent() -> None:
    """k3 names session s2 (appointment a2, recording consent only): analysed without consent."""
    tables = {**GOOD,
              "consents": [*GOOD["consents"], _consent("c1", "a2", "recording", 10.0)],
              "recording_sessions": [*GOOD["recording_sessions"], _session("s2", "a2", 20.0)],
              "calls": [*GOOD["calls"], _call("k3", None, 30.0, session="s2")],
              "call_analyses": [*GOOD["call_analyses"], _analysis("n3", "k3")]}
    verdict = _run(**tables)
    assert verdict.status == "invalid" and verdict.summary["analyses"] == 2
    (violation,) = verdict.violations
    assert violation.details == {"type": "analysed-without-consent", "call_id": "k3", "appointment_id": "a2"}
    assert "through its recording session s2" in violation.message
    # With a2's analysis consent granted before the call, the same call is valid.
    tables["consents"] = [*tables["consents"], _consent("c1", "a2", "analysis", 25.0)]
    assert _run(**tables).status == "valid"


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


# -- consent evidence (plan F3: timestamp, IP and user agent from the connection, text verbatim) --------------
def _grant(b, at: float, status: int | None, consent: str | None, appointment: str = "a1", spoofed: str = "203.0.113.7"):
    from stormproof.harness.history import vocabulary as v

    b.call(v.CONSENT_GRANT, at, at + 5, status, result={"id": consent} if consent else None,
           appointment_id=appointment, scope="recording", forwarded_for=spoofed,
           client_ips=[spoofed, "203.0.113.88", "203.0.113.89"], user_agent="load/u1", evidence="agreed \u2014 v1")


def _evidence_row(consent: str, at_ms: float, **changes: object) -> dict:
    row = {"id": consent, "company_id": "c1", "appointment_id": "a1", "scope": "recording",
           "granted_at": 1e9 + at_ms / 1e3, "ip": "127.0.0.1", "user_agent": "load/u1", "evidence": "agreed \u2014 v1"}
    return {**row, **changes}


def _judge(b, consents: list[dict], appointments: list[str] = ("a1",)):
    tables = {"consents": consents, "recording_sessions": [], "calls": [], "call_analyses": [], "appointments": [
        {"id": a, "company_id": "c1", "title": "t", "starts_at": 0.0, "ends_at": 1.0, "status": "scheduled",
         "assigned_rep_id": None} for a in appointments]}
    (verdict,) = check_all(b.build(), Snapshot.build(tables), [NAME])  # type: ignore[arg-type]
    return verdict


def test_evidence_from_the_connection_and_right_refusals_pass() -> None:
    from tests.invariants.builders import HistoryBuilder

    b = HistoryBuilder()
    _grant(b, 0, 201, "k1")
    _grant(b, 10, 404, None, appointment="gone")   # its appointment was deleted: 404 is right
    _grant(b, 20, 429, None)                        # rate limited: counted, not judged
    _grant(b, 30, None, None)                       # no answer: not judged
    _grant(b, 40, 201, "k2", appointment="gone")    # granted, then deleted with its appointment
    verdict = _judge(b, [_evidence_row("k1", 2)])
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["consent_grants"] == 3


def test_evidence_the_client_wrote_or_altered_and_wrong_refusals_are_flagged() -> None:
    from tests.invariants.builders import HistoryBuilder

    b = HistoryBuilder()
    _grant(b, 0, 201, "k1")      # ip taken from X-Forwarded-For
    _grant(b, 10, 201, "k2")     # no ip at all
    _grant(b, 20, 201, "k3")     # user agent and text not the ones sent, granted a day before
    _grant(b, 30, 422, None)     # a well-formed grant refused
    _grant(b, 40, 404, None)     # "not found" for an appointment that exists
    _grant(b, 50, 201, "k5")     # ip taken from X-Real-IP (another of the client's headers)
    verdict = _judge(b, [_evidence_row("k1", 2, ip="203.0.113.7"), _evidence_row("k2", 12, ip=None),
                         _evidence_row("k3", 22 - 86_400_000, user_agent="python-httpx", evidence="agreed"),
                         _evidence_row("k5", 52, ip="203.0.113.88")])
    assert sorted(v.details["type"] for v in verdict.violations) == [
        "consent-grant-wrong-status", "consent-grant-wrong-status", "evidence-altered", "evidence-granted-at",
        "evidence-ip-from-client", "evidence-ip-from-client", "evidence-ip-missing", "evidence-user-agent"]


# -- refused-with-consent: a 409 consent-required where the appointment had that consent ------------------------
def _refusal_history():
    """Time 0 is the load's first request (wall 1e9 s). a1 has both consents seeded before it; a2 gets its
    recording consent from a grant answered at 10 ms; a3 from a grant answered at 50 ms."""
    from tests.invariants.builders import HistoryBuilder

    b = HistoryBuilder()
    b.call("appointment.read", 0, 1, 200, appointment_id="a0")
    b.call("consent.grant", 5, 10, 201, appointment_id="a2", scope="recording", result={"id": "g2"})
    b.call("consent.grant", 40, 50, 201, appointment_id="a3", scope="recording", result={"id": "g3"})
    return b


def _refused(b, f: str, at: float, appointment: str, *, replayed: bool = False, key: str | None = None) -> None:
    result = {"problem": "consent-required", **({"replayed": True} if replayed else {})}
    b.call(f, at, at + 2, 409, appointment_id=appointment, result=result,
           **({"idempotency_key": key} if key else {}))


_ROWS = [_consent("c1", "a1", "recording", 1e9 - 60), _consent("c1", "a1", "analysis", 1e9 - 60),
         _consent("c1", "a2", "recording", 1e9 + 0.008), _consent("c1", "a3", "recording", 1e9 + 0.045)]


def _judge_refusals(b, rows=_ROWS):
    (verdict,) = check_all(b.build(), Snapshot.build({"consents": rows, "recording_sessions": [], "calls": [],
                                                      "call_analyses": []}), [NAME])
    return verdict


def test_a_refusal_of_an_appointment_with_that_consent_is_flagged() -> None:
    """Known bad: a1's seeded recording consent refused to a start and a legacy start, its seeded analysis
    consent refused to a call; a2's recording consent, acknowledged at 10 ms, refused to a start sent at 20 ms."""
    b = _refusal_history()
    _refused(b, "session.start", 20, "a1")
    _refused(b, "legacy.start", 22, "a1")
    _refused(b, "call.submit", 24, "a1")
    _refused(b, "session.start", 20, "a2", key="k1")
    verdict = _judge_refusals(b)
    assert verdict.status == "invalid"
    assert [v.details["type"] for v in verdict.violations] == ["refused-with-consent"] * 4
    assert {(v.details["appointment_id"], v.details["scope"]) for v in verdict.violations} == {
        ("a1", "recording"), ("a1", "analysis"), ("a2", "recording")}
    assert "seeded before the load began" in verdict.violations[0].message
    assert verdict.summary["refused_with_consent"] == 4 and verdict.summary["consent_refusals_judged"] == 4


def test_a_refusal_the_consent_may_not_have_preceded_passes() -> None:
    """Known good: a3's consent acknowledged at 50 ms after a start sent at 30 ms; a2's key first sent (5 ms)
    before its grant was answered; a replayed stored refusal; a4 without consent; a2's analysis scope, never
    granted; and a refusal naming no appointment."""
    b = _refusal_history()
    _refused(b, "session.start", 30, "a3")
    b.call("session.start", 4, 6, None, appointment_id="a2", idempotency_key="k2")  # its answer was lost
    _refused(b, "session.start", 20, "a2", key="k2")
    _refused(b, "session.start", 60, "a1", replayed=True)
    _refused(b, "session.start", 60, "a4")
    _refused(b, "call.submit", 60, "a2")
    b.call("call.submit", 60, 62, 409, recording_session_id="s9", result={"problem": "consent-required"})
    verdict = _judge_refusals(b)
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["refused_with_consent"] == 0 and verdict.summary["consent_refusals_judged"] == 4
