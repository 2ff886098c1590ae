"""server-errors-explained: a 5xx answer with no fault in place fails the run, on any route."""

from __future__ import annotations

from stormproof.harness.history.vocabulary import LOAD_STOPPED
from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder

NAME = "server-errors-explained"


def _fault(b: HistoryBuilder, start: float, stop: float, target: str = "postgres", fault: str = "reset_peer") -> None:
    b.call("fault", start, start + 1, None, process="nemesis", tenant=None, fault=fault, phase="start", target=target)
    b.call("fault", stop, stop + 1, None, process="nemesis", tenant=None, fault=fault, phase="stop", target=target)


def _reads(b: HistoryBuilder, n: int = 20) -> None:
    for i in range(n):
        b.call("appointment.read", i * 100, i * 100 + 5, 200, process=f"r{i}")


def test_a_500_with_no_fault_in_place_is_unexplained_on_any_route() -> None:
    b = HistoryBuilder()
    _reads(b)
    _fault(b, 1_000, 2_000)
    _, unassign = b.call("appointment.unassign", 9_000, 9_010, 500, process="u", result={"problem": "internal-error"})
    _, confirm = b.call("deletion.confirm", 9_500, 9_520, 502, process="c")
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "invalid" and verdict.kind == "safety"
    assert verdict.summary["by_type"]["unexplained-server-error"]["count"] == 2
    assert verdict.summary["unexplained_by_operation"] == {"appointment.unassign": 1, "deletion.confirm": 1}
    assert [v.details["f"] for v in verdict.violations] == ["appointment.unassign", "deletion.confirm"]
    assert "internal-error" in verdict.violations[0].message
    assert b.at(unassign) in verdict.violations[0].ops


def test_errors_under_a_fault_or_just_after_it_and_load_shedding_are_explained() -> None:
    b = HistoryBuilder()
    _reads(b)
    _fault(b, 1_000, 2_000, target="redis", fault="kill")
    b.call("session.start", 1_500, 1_600, 500, process="a")  # during the fault
    b.call("session.start", 900, 1_100, 503, process="b")  # sent before, answered during it
    b.call("session.start", 3_500, 3_600, 500, process="c")  # 1.5 s after its stop: a pooled connection it broke
    b.call("session.start", 8_000, 8_100, 503, process="d", result={"retry_after": "1"})  # shedding load
    b.call("session.start", 8_200, 8_300, 409, process="e")  # a definite refusal
    b.call("session.start", 8_400, 8_500, None, process="f", result={"error": "timeout"})  # no answer
    cut = b.invoke("session.start", 8_600, process="g")
    b.complete(cut, 8_700, None, type="info", error=f"{LOAD_STOPPED}: GreenletExit")
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "valid", verdict.violations
    assert (verdict.summary["server_errors"], verdict.summary["under_faults"], verdict.summary["shed"]) == (4, 3, 1)

    # The same 500 five seconds after the fault's stop is the app's own.
    b.call("session.start", 7_000, 7_100, 500, process="h")
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "invalid" and verdict.summary["under_faults"] == 3


def test_a_503_without_retry_after_is_not_load_shedding() -> None:
    b = HistoryBuilder()
    _reads(b)
    b.call("call.submit", 5_000, 5_100, 503, process="s", result={"retry_after": ""})
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "invalid" and verdict.summary["shed"] == 0


def test_a_history_with_no_answered_request_is_unknown() -> None:
    b = HistoryBuilder()
    _fault(b, 1_000, 2_000)
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "unknown"
