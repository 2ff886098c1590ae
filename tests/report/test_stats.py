"""summarise_history, fault_windows and time_series on hand-made histories with known answers."""

from __future__ import annotations

import pytest

from stormproof.harness.history import History, Op
from stormproof.harness.report.stats import ALL_OPS, fault_windows, summarise_history, time_series
from tests.invariants.builders import HistoryBuilder


def _fault(b: HistoryBuilder, at_ms: float, fault: str, phase: str, target: str, outcome: str = "ok",
           **params: object) -> None:
    invoke = b.invoke("fault", at_ms, process="nemesis", tenant=None, fault=fault, phase=phase, target=target,
                      params=params)
    b.complete(invoke, at_ms, type=outcome)  # type: ignore[arg-type]


def test_summary_counts_outcomes_errors_and_ok_latency() -> None:
    b = HistoryBuilder()
    b.call("appointment.read", 0, 10, 200)
    b.call("appointment.read", 100, 130, 200)
    b.call("appointment.read", 200, 400, 404)  # fail: a definite refusal, not an error, no latency
    b.call("session.start", 300, 1300, 503)  # 5xx: info, an error
    b.invoke("session.start", 500)  # never answered: info, an error
    _fault(b, 600, "latency", "start", "app", latency_ms=100)
    b.call("session.start", 1000, 1050, 201, result={"id": "s1"})
    history = b.build()

    stats = summarise_history(history)

    assert stats["requests"] == 6  # the nemesis is not load
    assert stats["errors"] == 2
    assert stats["error_rate"] == pytest.approx(2 / 6)
    assert stats["duration_s"] == pytest.approx(1.3)
    assert stats["rps"] == pytest.approx(6 / 1.3)
    read = stats["by_f"]["appointment.read"]
    assert (read["count"], read["ok"], read["fail"], read["info"], read["errors"]) == (3, 2, 1, 0, 0)
    assert read["p50_ms"] == 10.0 and read["p95_ms"] == 30.0 and read["max_ms"] == 30.0
    assert read["mean_ms"] == pytest.approx(20.0)
    start = stats["by_f"]["session.start"]
    assert (start["count"], start["ok"], start["fail"], start["info"], start["errors"]) == (3, 1, 0, 2, 2)
    assert start["p99_ms"] == 50.0
    assert "fault" not in stats["by_f"]
    assert stats["p50_ms"] == 30.0  # nearest rank over the ok latencies 10, 30, 50


def test_summary_of_a_function_without_ok_has_null_latency() -> None:
    b = HistoryBuilder()
    b.call("call.submit", 0, 5, None, error="ReadTimeout")
    stats = summarise_history(b.build())
    assert stats["by_f"]["call.submit"]["p95_ms"] is None
    assert stats["p95_ms"] is None


def test_fault_windows_pair_starts_stops_and_final_heal() -> None:
    b = HistoryBuilder()
    _fault(b, 1000, "latency", "start", "app", latency_ms=200)
    _fault(b, 1500, "latency", "start", "redis", latency_ms=50)
    _fault(b, 3000, "latency", "stop", "app", latency_ms=200)
    _fault(b, 4000, "kill", "start", "worker", outcome="info")  # may have applied partly
    _fault(b, 9000, "latency", "stop", "*", final=True)  # heals redis; kill is never healed
    windows = fault_windows(b.build())
    assert [(w["fault"], w["target"], w["start_s"], w["stop_s"]) for w in windows] == [
        ("latency", "app", 1.0, 3.0), ("latency", "redis", 1.5, 9.0), ("kill", "worker", 4.0, None)]
    assert windows[0]["params"] == {"latency_ms": 200}
    assert [w["outcome"] for w in windows] == ["ok", "ok", "info"]


def test_time_series_buckets_by_completion_and_keeps_gaps() -> None:
    b = HistoryBuilder()
    b.call("appointment.read", 100, 110, 200)  # bucket 0, 10 ms
    b.call("appointment.read", 200, 230, 200)  # bucket 0, 30 ms
    b.call("appointment.read", 2500, 2600, None, error="ReadTimeout")  # bucket 2: an error
    b.call("session.start", 2700, 2740, 201)  # bucket 2, 40 ms
    series = time_series(b.build())
    assert series.bucket_s == 1.0
    assert series.t == (0.0, 1.0, 2.0)
    assert series.rps == (2.0, 0.0, 2.0)
    assert series.errors_per_s == (0.0, 0.0, 1.0)
    assert series.latency["appointment.read"]["p50"] == (10.0, None, None)
    assert series.latency["appointment.read"]["p99"] == (30.0, None, None)
    assert series.latency[ALL_OPS]["p95"] == (30.0, None, 40.0)


def test_time_series_downsamples_long_runs_from_raw_latencies() -> None:
    ops = []
    # 2,000 s of one op per second: latency 1 ms, except 500 ms at t=1000 s.
    for second in range(2000):
        latency = 500 if second == 1000 else 1
        start = second * 1_000_000_000
        ops.append(Op(len(ops), "invoke", "p", "appointment.read", "c1", time_ns=start))
        ops.append(Op(len(ops), "ok", "p", "appointment.read", "c1", status=200, time_ns=start + latency * 1_000_000,
                      invoke_index=len(ops) - 1))
    series = time_series(History(ops), max_points=600)
    assert len(series.t) <= 600
    assert series.bucket_s == 4.0
    assert series.rps[0] == pytest.approx(1.0)
    # The slow op survives downsampling as the max (p99) of its wide bucket, not averaged away.
    assert max(v for v in series.latency["appointment.read"]["p99"] if v is not None) == 500.0


def test_time_series_of_an_empty_history() -> None:
    series = time_series(History(()))
    assert series.rps == (0.0,) and series.latency == {}
