"""refusals-explained: a well-formed request refused with a 4xx its route's contract does not give fails the run."""

from __future__ import annotations

from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder

NAME = "refusals-explained"


def _problem(name: str) -> dict[str, str]:
    return {"problem": name}


def _fault(b: HistoryBuilder, start: float, stop: float, target: str, fault: str) -> None:
    b.call("fault", start, start + 1, None, process="nemesis", tenant=None, fault=fault, phase="start", target=target)
    b.call("fault", stop, stop + 1, None, process="nemesis", tenant=None, fault=fault, phase="stop", target=target)


def test_refusals_the_contract_does_not_give_are_flagged_on_any_route() -> None:
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, process="a", appointment_id="a1", idempotency_key="k0")
    _, unassign = b.call("appointment.unassign", 100, 110, 409, process="u", result=_problem("conflict"),
                         appointment_id="a1", idempotency_key="k1")
    b.call("session.start", 200, 210, 409, process="s", result=_problem("appointment-busy"),
           appointment_id="a1", idempotency_key="k2")
    b.call("call.submit", 300, 310, 422, process="c", result=_problem("validation-error"), appointment_id="a1",
           idempotency_key="k3")
    b.call("appointment.read", 400, 410, 403, process="r", result=_problem("forbidden"), appointment_id="a1")
    b.call("webhook.deliver", 500, 510, 409, process="w", result=_problem("job-already-applied"), job_id="j1")
    b.call("session.read", 600, 610, 401, process="t", result=_problem("unauthenticated"), session_id="s1")
    b.call("deletion.request", 700, 710, 415, process="d", scope="appointment", target_id="a1")
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "invalid" and verdict.kind == "safety"
    assert verdict.summary["by_type"]["refusal-outside-contract"]["count"] == 7
    assert verdict.summary["unexplained_by_operation"] == {
        "appointment.read": 1, "appointment.unassign": 1, "call.submit": 1, "deletion.request": 1,
        "session.read": 1, "session.start": 1, "webhook.deliver": 1}
    first = verdict.violations[0]
    assert first.details == {"type": "refusal-outside-contract", "tenant": "c1", "f": "appointment.unassign",
                             "status": 409, "problem": "conflict"}
    assert b.at(unassign) in first.ops and "409 conflict" in first.message
    assert "409 active-session-exists or consent-required" in verdict.violations[1].message


def test_a_list_answered_404_is_flagged_unless_it_named_another_tenant() -> None:
    """A list names no row, so "no such row" is no answer of it (0 of 20 list 404s judged, 2026-12-05); a list
    naming another tenant in X-Company-Id may be answered as if that tenant did not exist."""
    b = HistoryBuilder()
    b.call("appointment.list", 0, 10, 404, result=_problem("not-found"), burst=1)
    b.call("dead_letter.list", 20, 30, 404, process="d", result=_problem("not-found"))
    b.call("dead_letter.list", 40, 50, 409, process="e", result=_problem("conflict"))
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.summary["unexplained_by_operation"] == {"appointment.list": 1, "dead_letter.list": 2}
    other = HistoryBuilder()
    other.call("appointment.list", 0, 10, 404, result=_problem("not-found"), header_tenant="c2")
    other.call("appointment.read", 20, 30, 404, result=_problem("not-found"), appointment_id="gone")
    (verdict,) = check_all(other.build(), Snapshot(), [NAME])
    assert verdict.status == "valid", verdict.violations


def test_refusals_the_contract_gives_pass() -> None:
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 409, result=_problem("active-session-exists"), appointment_id="a1",
           idempotency_key="k1", payload_fp="p1")
    b.call("session.start", 20, 30, 409, result=_problem("consent-required"), appointment_id="a2", idempotency_key="k2")
    b.call("legacy.start", 40, 50, 409, result=_problem("active-session-exists"), appointment_id="a1")
    b.call("appointment.assign", 60, 70, 409, result=_problem("rep-double-booked"), appointment_id="a1",
           idempotency_key="k3")
    b.call("appointment.assign", 80, 90, 409, result=_problem("appointment-already-assigned"), appointment_id="a1",
           idempotency_key="k4")
    b.call("appointment.unassign", 100, 110, 404, result=_problem("not-found"), appointment_id="gone")
    b.call("call.submit", 120, 130, 429, result=_problem("rate-limited"), appointment_id="a1", idempotency_key="k5")
    b.call("call.submit", 140, 150, 409, result=_problem("consent-required"), appointment_id="a1",
           idempotency_key="k6")
    b.call("session.start", 160, 170, 409, result=_problem("idempotency-key-in-flight"), appointment_id="a1",
           idempotency_key="k1", payload_fp="p1")
    b.call("appointment.unassign", 180, 190, 409, result=_problem("resource-busy"), appointment_id="a1")
    # One key, another payload sent before: the mismatch is the contract's answer.
    b.call("session.start", 200, 210, 422, result=_problem("idempotency-key-mismatch"), appointment_id="a2",
           idempotency_key="k1", payload_fp="p2")
    b.call("webhook.deliver", 220, 230, 401, result=_problem("unauthenticated"), job_id="j1", bad_signature="none")
    b.call("webhook.deliver", 240, 250, 404, result=_problem("not-found"), job_id="j2", superseded=True)
    b.call("deletion.confirm", 260, 270, 422, result=_problem("confirmation-token-invalid"), deletion_id="d1",
           wrong_token=True)
    b.call("deletion.confirm", 280, 290, 409, result=_problem("deletion-not-pending"), deletion_id="d1")
    b.call("appointment.list", 300, 310, 403, result=_problem("forbidden"), header_tenant="c2")
    b.call("session.start", 320, 330, 409, appointment_id="a1", idempotency_key="k7")  # names no problem
    # Left to their own rules: a stop, a consent grant, a probe.
    b.call("session.stop", 340, 350, 409, result=_problem("conflict"), session_id="s1", idempotency_key="k8")
    b.call("consent.grant", 360, 370, 422, result=_problem("validation-error"), appointment_id="a1", scope="x")
    b.call("probe.cross_tenant", 380, 390, 403, result=_problem("forbidden"), target_tenant="c2")
    b.call("appointment.read", 400, 410, 200, appointment_id="a1")
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "valid", verdict.violations
    assert (verdict.summary["answers_judged"], verdict.summary["refusals"], verdict.summary["unnamed_conflicts"]) \
        == (18, 17, 1)


def test_a_mismatch_needs_another_payload_sent_before_it_under_the_key() -> None:
    b = HistoryBuilder()
    b.call("session.start", 0, 10, 201, appointment_id="a1", idempotency_key="k1", payload_fp="p1")
    b.call("session.start", 20, 30, 422, result=_problem("idempotency-key-mismatch"), appointment_id="a1",
           idempotency_key="k1", payload_fp="p1")  # the same payload again: a replay, not a mismatch
    b.call("session.start", 40, 50, 422, result=_problem("idempotency-key-mismatch"), appointment_id="a1",
           idempotency_key="k9", payload_fp="p1")  # a key never used before
    b.call("session.start", 60, 70, 422, result=_problem("idempotency-key-mismatch"), appointment_id="a1",
           idempotency_key="k1", payload_fp="p1", tenant="c2")  # the other tenant's key space
    b.call("session.start", 80, 90, 400, result=_problem("idempotency-key-missing"), appointment_id="a1",
           idempotency_key="k5")  # it was sent
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "invalid" and verdict.summary["by_type"]["refusal-outside-contract"]["count"] == 4


def test_a_cut_body_is_explained_only_by_a_network_fault_on_the_clients_link() -> None:
    b = HistoryBuilder()
    _fault(b, 1_000, 2_000, target="app", fault="limit_data")
    _fault(b, 5_000, 6_000, target="postgres", fault="down")
    _fault(b, 8_000, 9_000, target="app", fault="kill")
    b.call("session.start", 1_500, 1_510, 400, result=_problem("malformed-request"), appointment_id="a1",
           idempotency_key="k1")
    b.call("call.submit", 3_000, 3_010, 422, result=_problem("validation-error"), appointment_id="a1",
           idempotency_key="k2")  # 1 s after the link's fault: a connection it cut
    b.call("session.start", 1_600, 1_610, 409, result=_problem("conflict"), appointment_id="a1",
           idempotency_key="k3")  # a conflict is no cut body
    b.call("session.start", 5_500, 5_510, 400, result=_problem("malformed-request"), appointment_id="a1",
           idempotency_key="k4")  # the database's fault cuts nothing the client sent
    b.call("session.start", 8_500, 8_510, 422, result=_problem("validation-error"), appointment_id="a1",
           idempotency_key="k5")  # nor does a killed app
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "invalid" and verdict.summary["under_app_link_faults"] == 2
    assert [x.details["status"] for x in verdict.violations] == [409, 400, 422]
