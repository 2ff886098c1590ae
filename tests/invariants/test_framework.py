import pytest

from stormproof.harness.history import History
from stormproof.harness.invariants import (
    CheckConfig,
    Snapshot,
    Verdict,
    check_all,
    checker,
    get_checker,
    merge_status,
    metric_key,
    metric_sum,
    names,
    overall,
    parse_metrics,
    run_checker,
    split_metric_key,
    verdict_to_dict,
)
from stormproof.harness.invariants.registry import _REGISTRY
from stormproof.harness.invariants.timeline import INF, Interval, Undoers, certain_overlaps

ALL = {"single-active-session", "single-assignment", "job-applied-once", "job-applied-eventually",
       "idempotent-replay", "tenant-isolation", "no-lost-acknowledged-write", "dead-letter-accounting",
       "metrics-agree", "slo-error-rate", "slo-latency-p95", "consent-before-processing", "task-deduplicated",
       "rate-limit-enforced", "deletion-audited", "retention-enforced", "authorization", "trace-echoed",
       "server-errors-explained", "reads-current", "refusals-explained", "input-validated"}


def test_every_checker_is_registered() -> None:
    assert set(names()) == ALL
    assert {get_checker(n).kind for n in ALL} == {"safety", "liveness", "slo"}


def test_crashing_checker_is_unknown_never_valid() -> None:
    @checker("test-crash", "safety")
    def crash(history: History, snapshot: Snapshot) -> Verdict:
        raise ZeroDivisionError("boom")

    @checker("test-wrong-answer", "safety")
    def wrong(history: History, snapshot: Snapshot) -> Verdict:
        return Verdict("someone-else", "valid", "safety")

    try:
        crashed, answered = check_all(History([]), Snapshot(), ["test-crash", "test-wrong-answer"])
        assert crashed.status == "unknown" and "ZeroDivisionError: boom" in (crashed.error or "")
        assert "traceback" in crashed.summary
        assert answered.status == "unknown"
        assert overall([crashed]).status == "unknown"
        assert run_checker(get_checker("test-crash"), History([]), Snapshot()).status == "unknown"
    finally:
        del _REGISTRY["test-crash"], _REGISTRY["test-wrong-answer"]


def test_unknown_checker_name_is_an_error() -> None:
    with pytest.raises(KeyError, match="single-active-session"):
        check_all(History([]), Snapshot(), ["no-such-invariant"])


def test_ranking_and_slo_apart() -> None:
    assert merge_status([]) == "valid"
    assert merge_status(["valid", "unknown"]) == "unknown"
    assert merge_status(["unknown", "invalid", "valid"]) == "invalid"
    verdicts = [Verdict("a", "valid", "safety"), Verdict("b", "unknown", "liveness"),
                Verdict("s", "invalid", "slo")]
    result = overall(verdicts)
    assert (result.status, result.slo_status) == ("unknown", "invalid")
    assert result.unknown == ("b",) and result.slo_breaches == ("s",) and result.invalid == ()
    assert overall(verdicts + [Verdict("c", "invalid", "safety")]).status == "invalid"
    assert verdict_to_dict(verdicts[2])["kind"] == "slo"


def test_config_override_reaches_checkers() -> None:
    from tests.invariants.builders import HistoryBuilder

    b = HistoryBuilder()
    b.call("session.read", 0, 300, 200)
    history = b.build()
    (default,) = check_all(history, Snapshot(), ["slo-latency-p95"])
    (relaxed,) = check_all(history, Snapshot(), ["slo-latency-p95"], config=CheckConfig(latency_p95_ms=500))
    assert (default.status, relaxed.status) == ("invalid", "valid")
    with pytest.raises(ValueError):
        CheckConfig(error_rate_max=2)


def test_metrics_parsing() -> None:
    text = (
        '# TYPE webhook_dedupe_misses_total counter\n'
        'webhook_dedupe_misses_total{source="webhook"} 3.0\n'
        'webhook_dedupe_misses_total{source="poll"} 2.0\n'
        '# TYPE idempotency_keys_total counter\n'
        'idempotency_keys_total{outcome="replay"} 7.0\n'
        'idempotency_keys_total{outcome="new"} 9.0\n'
        '# TYPE odd counter\n'
        'odd_total{b="x\\"y",a="1\\\\2"} 1.0\n'
    )
    metrics = parse_metrics(text)
    assert metrics['webhook_dedupe_misses_total{source="webhook"}'] == 3.0
    assert metric_sum(metrics, "webhook_dedupe_misses_total") == 5.0
    assert metric_sum(metrics, "idempotency_keys_total", outcome="replay") == 7.0
    assert metric_sum(metrics, "idempotency_keys") is None  # a prefix is not a name
    assert metric_sum(metrics, "missing_total") is None
    key = metric_key("odd_total", {"b": 'x"y', "a": "1\\2"})
    assert key in metrics and key.startswith('odd_total{a=')
    assert split_metric_key(key) == ("odd_total", (("a", "1\\2"), ("b", 'x"y')))


def test_snapshot_build_normalises() -> None:
    import uuid
    from datetime import datetime, timezone

    sid = uuid.uuid4()
    snap = Snapshot.build(
        {"recording_sessions": [{"id": sid, "created_at": datetime(2024, 1, 1, tzinfo=timezone.utc),
                                 "stopped_at": "2024-01-01T00:00:01Z", "status": "stopped"}]},
        metrics_text="# TYPE x counter\nx_total 2\n",
        completed_jobs=["j1"],
    )
    (row,) = snap.recording_sessions or ()
    assert row["id"] == str(sid) and row["created_at"] == 1704067200.0 and row["stopped_at"] == 1704067201.0
    assert snap.metrics == {"x_total": 2.0} and snap.completed_jobs == {"j1"} and snap.calls is None
    with pytest.raises(ValueError):
        Snapshot.build({"companies": []})


def test_certain_overlaps_sweep() -> None:
    intervals = [Interval(0, 10, "a", 1), Interval(2, 4, "a", 2), Interval(5, 6, "b", 3), Interval(10, 12, "c", 4),
                 Interval(11, 11, "d", 5)]
    assert [(e.ref, l.ref) for e, l in certain_overlaps(intervals)] == [(1, 3)]
    undo = Undoers([(5, 8), (1, 3), (7, INF)])
    assert undo.end_after(0) == 1  # all three could act after 0
    assert undo.end_after(3) == 5  # the one completed at 3 cannot act on a write begun at 3
    assert undo.end_after(100) == 7  # only the unknown-outcome one
