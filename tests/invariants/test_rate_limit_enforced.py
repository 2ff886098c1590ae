"""rate-limit-enforced: a tenant answered beyond rate + burst in one second is flagged."""

from __future__ import annotations

from pathlib import Path

from stormproof.harness.history import HistoryRecorder, load_history
from stormproof.harness.invariants import CheckConfig, Snapshot, check_all


def _history(tmp_path: Path, per_second: dict[str, list[int]]) -> object:
    """per_second: tenant -> statuses answered within second 0 (all the same second)."""
    clock = iter(range(1, 10_000))
    recorder = HistoryRecorder(tmp_path / "h.jsonl", origin_ns=0, clock=lambda: next(clock) * 1000)
    for tenant, statuses in per_second.items():
        for status in statuses:
            invoke = recorder.invoke("u1", "appointment.read", tenant=tenant, args={"appointment_id": "a"})
            recorder.complete(invoke, status=status)
    recorder.close()
    return load_history(tmp_path / "h.jsonl")


def _verdict(history, config: CheckConfig):
    (verdict,) = check_all(history, Snapshot.build({}, config=config), ["rate-limit-enforced"])
    return verdict


LIMIT = CheckConfig(rate_limit_per_s=20, rate_limit_burst=10)  # at most 40 accepted per second


def test_a_limited_tenant_passes(tmp_path: Path) -> None:
    history = _history(tmp_path, {"a": [200] * 35 + [429] * 60, "b": [200] * 30})
    verdict = _verdict(history, LIMIT)
    assert verdict.status == "valid"
    assert verdict.summary["answered_429"] == 60


def test_an_unlimited_tenant_is_a_violation(tmp_path: Path) -> None:
    history = _history(tmp_path, {"a": [200] * 90 + [404] * 10, "b": [200] * 10})
    verdict = _verdict(history, LIMIT)
    assert verdict.status == "invalid"
    assert [v.details["tenant"] for v in verdict.violations] == ["a"]
    assert verdict.violations[0].details["accepted"] == 100


def test_no_limit_configured_is_not_checked(tmp_path: Path) -> None:
    verdict = _verdict(_history(tmp_path, {"a": [200] * 500}), CheckConfig())
    assert verdict.status == "valid" and verdict.summary["checked"] is False
