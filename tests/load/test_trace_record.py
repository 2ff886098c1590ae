"""How an answer's X-Trace-Id is recorded beside the one sent (plan E1, judged by trace-echoed)."""

from __future__ import annotations

from stormproof.harness.load.client import Derived, sent_trace_id, trace_echo, traceparent


def test_trace_echo_names_how_the_answer_matched() -> None:
    assert trace_echo("abc12345", {"X-Trace-Id": "abc12345"}) == "echoed"
    assert trace_echo("abc12345", {"X-Trace-Id": "zzz99999"}) == "other"
    assert trace_echo("abc12345", {}) == "missing"
    assert trace_echo(None, {"X-Trace-Id": "abc12345"}) is None  # nothing sent: nothing to judge


def test_derived_result_carries_the_trace_and_still_the_mask() -> None:
    derive = Derived(["c1"])
    body = b'{"id": "s1", "company_id": "c1"}'
    traced = derive.result(200, body, False, {"mask": None, "trace": "other"})
    assert traced["trace"] == "other" and "body_masked" not in traced
    both = derive.result(404, body, False, {"mask": ("s1",), "trace": "echoed"})
    assert both["trace"] == "echoed" and both["body_masked"] == derive.result(404, body, False, ("s1",))["body_masked"]
    assert "trace" not in derive.result(200, body, False, None)


def test_sent_trace_id_reads_x_trace_id_first_then_a_well_formed_traceparent() -> None:
    trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    assert traceparent(trace, span) == f"00-{trace}-{span}-01"
    assert sent_trace_id({"traceparent": traceparent(trace, span)}) == trace
    assert sent_trace_id({"X-Trace-Id": "mine", "traceparent": traceparent(trace, span)}) == "mine"
    assert sent_trace_id({"traceparent": "00-not-a-trace-01"}) is None
    assert sent_trace_id({}) is None

