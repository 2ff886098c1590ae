"""no-lost-acknowledged-write's created-at-off: one clock offset puts every created row's stamp within its request."""

from __future__ import annotations

from stormproof.harness.invariants import Snapshot, check_all
from stormproof.harness.invariants.checkers._created_at import TOLERANCE_S

from .builders import HistoryBuilder

#: The app's clock, an hour ahead of the load's: a constant offset is no violation.
SKEW_S = 3600.0


def _verdict(b: HistoryBuilder, calls: tuple[dict, ...], sessions: tuple[dict, ...] = ()):
    (verdict,) = check_all(b.build(), Snapshot(calls=calls, recording_sessions=sessions),  # type: ignore[arg-type]
                           ["no-lost-acknowledged-write"])
    return verdict


def _calls(stamps: dict[str, float]) -> tuple[dict, ...]:
    return tuple({"id": call, "company_id": "c1", "appointment_id": None, "recording_session_id": None,
                  "created_at": at} for call, at in stamps.items())


def _history() -> HistoryBuilder:
    """Three calls, ten seconds apart (times in ms; the load's wall clock is 1e9 + ms / 1000)."""
    b = HistoryBuilder()
    for n, call in enumerate(("k1", "k2", "k3")):
        b.call("call.submit", 10_000 * n, 10_000 * n + 200, 202, process=f"p{n}", result={"id": call},
               idempotency_key=f"key{n}")
    return b


def test_stamps_taken_while_their_requests_ran_pass_whatever_the_clock_offset() -> None:
    b = _history()
    verdict = _verdict(b, _calls({"k1": 1e9 + SKEW_S + 0.1, "k2": 1e9 + SKEW_S + 10.15, "k3": 1e9 + SKEW_S + 20.2}))
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["creation_times_judged"] == 3


def test_one_stamp_for_every_call_is_flagged() -> None:
    """A default evaluated once: every call stamped with the app's start, though they were sent 20 s apart."""
    b = _history()
    verdict = _verdict(b, _calls({"k1": 1e9 + SKEW_S - 5, "k2": 1e9 + SKEW_S - 5, "k3": 1e9 + SKEW_S - 5}))
    assert [(v.details["type"], v.details["rows"]) for v in verdict.violations] == [
        ("created-at-off", ["k3", "k1"])]


def test_a_stamp_off_by_more_than_the_tolerance_is_flagged_and_within_it_is_not() -> None:
    b = _history()
    within = {"k1": 1e9 + 0.1, "k2": 1e9 + 10.1 + TOLERANCE_S * 0.9, "k3": 1e9 + 20.1}
    assert _verdict(b, _calls(within)).status == "valid"
    beyond = {**within, "k2": 1e9 + 10.2 + TOLERANCE_S + 0.5}
    verdict = _verdict(b, _calls(beyond))
    assert {v.details["type"] for v in verdict.violations} == {"created-at-off"}
    assert "k2" in verdict.violations[0].details["rows"]


def test_a_retry_under_the_key_may_have_created_the_row_when_the_key_was_first_sent() -> None:
    """The first send got no answer; the resend 8 s later is answered 202 (a replay): the call was stamped at the
    first send, and that is no violation. Without the key the same stamp would be 8 s before its request."""
    b = HistoryBuilder()
    b.call("call.submit", 0, 5_000, None, result={}, idempotency_key="key0")
    b.call("call.submit", 8_000, 8_200, 202, process="p2", result={"id": "k1", "replayed": True},
           idempotency_key="key0", resend=1)
    b.call("call.submit", 20_000, 20_200, 202, process="p3", result={"id": "k2"}, idempotency_key="key2")
    stamps = _calls({"k1": 1e9 + 0.1, "k2": 1e9 + 20.1})
    assert _verdict(b, stamps).status == "valid"
    unkeyed = HistoryBuilder()
    unkeyed.call("call.submit", 8_000, 8_200, 202, result={"id": "k1"})
    unkeyed.call("call.submit", 20_000, 20_200, 202, process="p3", result={"id": "k2"})
    assert _verdict(unkeyed, stamps).status == "invalid"


def test_sessions_are_judged_when_a_start_created_them() -> None:
    """A start answered 201 created its session; one answered 200 (an existing session, some apps' idempotent
    start) did not, and its old stamp is no violation."""
    b = HistoryBuilder()
    b.call("session.start", 0, 100, 201, result={"id": "s1"}, appointment_id="a1")
    b.call("session.start", 30_000, 30_100, 200, process="p2", result={"id": "s1"}, appointment_id="a1")
    b.call("session.start", 40_000, 40_100, 201, process="p3", result={"id": "s2"}, appointment_id="a2")
    rows = ({"id": "s1", "company_id": "c1", "created_at": 1e9 + 0.05},
            {"id": "s2", "company_id": "c1", "created_at": 1e9 + 40.05})
    assert _verdict(b, (), rows).status == "valid"
    frozen = tuple({**row, "created_at": 1e9 - 60} for row in rows)
    assert {v.details["table"] for v in _verdict(b, (), frozen).violations} == {"recording_sessions"}


def test_one_call_alone_is_compared_with_nothing_and_not_counted() -> None:
    b = HistoryBuilder()
    b.call("call.submit", 0, 200, 202, result={"id": "k1"}, idempotency_key="key0")
    verdict = _verdict(b, _calls({"k1": 1e9 - 3600}))
    assert verdict.status == "valid" and verdict.summary["creation_times_judged"] == 0
