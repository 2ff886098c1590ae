"""reads-current: reads answer what acknowledged writes left (known-bad histories caught, known-good passed)."""

from __future__ import annotations

from dataclasses import replace

from stormproof.harness.invariants import Snapshot, check_all

from .builders import HistoryBuilder


def _session_call(b: HistoryBuilder, f: str, start: float, end: float, status: int, body_status: str, *,
                  process: str = "p1", **args: object) -> None:
    """A call whose answer's body has a ``status`` of its own (the builder's keyword would clash)."""
    _, done = b.call(f, start, end, status, process=process, **args)
    b.ops[done] = replace(b.ops[done], result={"id": args.get("session_id", "s1"), "status": body_status})


def _judged(b: HistoryBuilder):
    (verdict,) = check_all(b.build(), Snapshot.build({}), ["reads-current"])
    return verdict


def test_a_session_read_active_after_its_stop_was_acknowledged_is_stale() -> None:
    b = HistoryBuilder()
    _session_call(b, "session.start", 0, 1, 201, "recording", appointment_id="a1")
    _session_call(b, "session.stop", 2, 3, 200, "stopped", session_id="s1")
    _session_call(b, "session.read", 4, 5, 200, "recording", process="p2", session_id="s1")
    _session_call(b, "session.read", 2.5, 5, 200, "recording", process="p3", session_id="s1")
    verdict = _judged(b)
    assert [v.details["type"] for v in verdict.violations] == ["stale-session"]  # not the read sent mid-stop


def test_a_session_read_404_after_its_start_is_lost_unless_its_appointment_may_be_gone() -> None:
    b = HistoryBuilder()
    _session_call(b, "session.start", 0, 1, 201, "recording", appointment_id="a1")
    b.call("session.read", 2, 3, 404, process="p2", session_id="s1")
    b.call("session.read", 0.5, 3, 404, process="p3", session_id="s1")  # sent before the start was answered
    assert [v.details["type"] for v in _judged(b).violations] == ["session-read-lost"]
    b.call("appointment.delete", 1.5, 1.8, 202, process="p4", appointment_id="a1")
    b.call("deletion.confirm", 1.9, 2.5, 200, process="p4", deletion_id="d1")
    assert _judged(b).status == "valid"


def test_an_appointment_read_must_show_the_last_unambiguous_assignment() -> None:
    def read_after(rep_read: str | None, *, concurrent: bool = False, unassign: bool = False):
        b = HistoryBuilder()
        b.call("appointment.assign", 0, 1, 200, appointment_id="a1", rep_id="r1", idempotency_key="k1",
               result={"id": "x1", "rep_id": "r1"})
        if unassign:
            b.call("appointment.unassign", 2, 3, 200, process="p2", appointment_id="a1", idempotency_key="k2")
        if concurrent:
            b.call("appointment.assign", 4.5, 9, 409, process="p3", appointment_id="a1", rep_id="r2",
                   idempotency_key="k3")
            b.call("appointment.unassign", 4.5, 9, None, process="p4", appointment_id="a1", idempotency_key="k4")
        b.call("appointment.read", 5, 6, 200, process="p5", appointment_id="a1",
               result={"id": "a1"} | ({"assigned_rep_id": rep_read} if rep_read else {}))
        return _judged(b)

    assert read_after("r1").status == "valid"
    assert [v.details["type"] for v in read_after(None).violations] == ["stale-assignment"]
    assert [v.details["type"] for v in read_after("r1", unassign=True).violations] == ["stale-assignment"]
    assert read_after(None, unassign=True).status == "valid"
    # an unanswered unassign in flight during the read: either state may be read (a refused assign acted nothing)
    assert read_after(None, concurrent=True).status == "valid"
    assert read_after("r1", concurrent=True).status == "valid"


def test_a_retry_under_the_key_acted_when_the_key_was_first_sent() -> None:
    """An unassign first sent before the assign was answered may have acted before it: the assign then left
    the state, and a read showing nobody is not unambiguously stale."""
    b = HistoryBuilder()
    b.call("appointment.unassign", 0, 0.2, None, process="p2", appointment_id="a1", idempotency_key="k2")
    b.call("appointment.assign", 0.5, 1, 200, appointment_id="a1", rep_id="r1", idempotency_key="k1")
    b.call("appointment.unassign", 3, 4, 200, process="p2", appointment_id="a1", idempotency_key="k2")
    b.call("appointment.read", 5, 6, 200, process="p5", appointment_id="a1", result={"id": "a1"})
    assert _judged(b).status == "valid"


def _delivered(b: HistoryBuilder, start: float, end: float, answered: str, **args: object) -> int:
    """A signed delivery of call c1's job, answered 200 with ``answered`` (applied, duplicate)."""
    _, done = b.call("webhook.deliver", start, end, 200, process="shunya", call_id="c1", job_id="j1", **args)
    b.ops[done] = replace(b.ops[done], result={"status": answered})
    return done


def test_a_call_read_without_its_analysis_after_it_was_applied_or_seen_is_stale() -> None:
    b = HistoryBuilder()
    b.call("call.read", 0, 10, 200, process="r0", call_id="c1", result={"analyses": 0})  # before: nothing yet
    applied = _delivered(b, 20, 30, "applied")
    b.call("call.read", 25, 40, 200, process="r1", call_id="c1", result={"analyses": 0})  # sent before the answer
    _, stale = b.call("call.read", 50, 60, 200, process="r2", call_id="c1", result={"analyses": 0})
    b.call("call.read", 70, 80, 200, process="r3", call_id="c1", result={"analyses": 1})
    b.call("call.read", 90, 100, 404, process="r4", call_id="c1")  # deleted with its call: a 404, not judged
    # Another call: a read that saw its analysis is evidence too.
    b.call("call.read", 0, 10, 200, process="r5", call_id="c2", result={"analyses": 1})
    b.call("call.read", 20, 30, 200, process="r6", call_id="c2", result={"analyses": 0})
    verdict = _judged(b)
    assert verdict.status == "invalid" and verdict.summary["call_reads_judged"] == 3
    assert [x.details for x in verdict.violations] == [{"type": "stale-call", "call_id": "c2"},
                                                       {"type": "stale-call", "call_id": "c1"}]  # invoke order
    assert b.at(applied) in verdict.violations[1].ops and b.at(stale) in verdict.violations[1].ops
    assert "answered applied" in verdict.violations[1].message
    assert "an earlier read showed one" in verdict.violations[0].message


def test_a_call_read_after_a_duplicate_a_superseded_or_a_forged_delivery_is_not_judged() -> None:
    b = HistoryBuilder()
    _delivered(b, 0, 10, "duplicate")  # the job may have failed: no analysis is promised
    _delivered(b, 20, 30, "applied", superseded=True)
    _delivered(b, 40, 50, "applied", bad_signature="stale")
    b.call("call.read", 60, 70, 200, process="r", call_id="c1", result={"analyses": 0})
    b.call("call.read", 80, 90, 200, process="r", call_id="c1")  # a backend that does not count analyses
    verdict = _judged(b)
    assert verdict.status == "valid" and verdict.summary["call_reads_judged"] == 0


def test_a_read_answering_another_row_of_the_tenant_is_flagged() -> None:
    """A read by id names the row asked for; a session read names its start's appointment."""
    b = HistoryBuilder()
    b.call("session.start", 0, 1, 201, appointment_id="a1", result={"id": "s1"})
    b.call("session.read", 2, 3, 200, session_id="s1", result={"id": "s1", "appointment_id": "a1"})
    b.call("appointment.read", 2, 3, 200, process="p2", appointment_id="a1", result={"id": "a1"})
    b.call("call.read", 2, 3, 200, process="p3", call_id="k1", result={"id": "k1"})
    good = _judged(b)
    assert good.status == "valid" and good.summary["read_identities_judged"] == 3, good.violations
    b.call("session.read", 4, 5, 200, session_id="s1", result={"id": "s1", "appointment_id": "a2"})
    b.call("appointment.read", 4, 5, 200, process="p2", appointment_id="a1", result={"id": "a9"})
    b.call("call.read", 4, 5, 200, process="p3", call_id="k1", result={"id": "k2"})
    bad = _judged(b)
    assert sorted((v.details["type"], v.details["f"]) for v in bad.violations) == [
        ("read-other-row", "appointment.read"), ("read-other-row", "call.read"), ("read-other-row", "session.read")]


def test_list_reads_list_rows_of_their_path_and_filter_only() -> None:
    """An appointment's consents list names that appointment in every row; a ?status= list, that status: a row of
    another (consent-list-appointment, session-list-status-filter) is list-other-rows. A list that noted no field,
    a refusal and a filter probe of another tenant's query are not judged."""
    route = "GET /api/v1/appointments/{appointment_id}/consents"
    b = HistoryBuilder()
    b.call("probe.filter", 0, 5, 200, route=route, own_read=True, appointment_id="a1", list_fields=("appointment_id",),
           result={"fields_seen": frozenset({"appointment_id=a1"})})
    b.call("probe.filter", 10, 15, 200, route="GET /api/v1/recordings/sessions", query_field="status",
           value="stopped", list_fields=("status",), result={"fields_seen": frozenset({"status=stopped"})})
    b.call("probe.filter", 20, 25, 200, route=route, own_read=True, appointment_id="a2",
           list_fields=("appointment_id",), result={"fields_seen": frozenset()})
    b.call("probe.filter", 30, 35, 404, route=route, own_read=True, appointment_id="a3",
           list_fields=("appointment_id",), result={"fields_seen": frozenset({"appointment_id=a9"})})
    verdict = _judged(b)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["list_reads_judged"] == 3
    _, bad_list = b.call("probe.filter", 40, 45, 200, route=route, own_read=True, appointment_id="a1",
                         list_fields=("appointment_id",),
                         result={"fields_seen": frozenset({"appointment_id=a1", "appointment_id=a7"})})
    _, bad_filter = b.call("probe.filter", 50, 55, 200, route="GET /api/v1/recordings/sessions",
                           query_field="status", value="recording", list_fields=("status",),
                           result={"fields_seen": frozenset({"status=recording", "status=stopped"})})
    verdict = _judged(b)
    found = [(v.details["type"], v.details["listed"], v.ops[-1]) for v in verdict.violations]
    assert found == [("list-other-rows", ("appointment_id=a7",), b.at(bad_list)),
                     ("list-other-rows", ("status=stopped",), b.at(bad_filter))]
