"""idempotent-replay judges key expiry (plan B1): past the TTL a key is forgotten, before it the answer replays.

The ``expired`` probe sends the same key and payload twice, the second well after the TTL. Times in the
builder are milliseconds; the TTL here is 3 s, its margin 0.6 s either side.
"""

from __future__ import annotations

import pytest

from stormproof.harness.invariants import CheckConfig, Snapshot, check_all
from stormproof.harness.invariants.checkers.idempotent_replay import ttl_margin
from tests.invariants.builders import HistoryBuilder

TTL = CheckConfig(idempotency_ttl_s=3.0)
CREATED = {"id": "s1", "body_sha256": "h1"}
REPLAYED = {"id": "s1", "body_sha256": "h1", "replayed": True}
AGAIN = {"id": "s2", "body_sha256": "h2"}  # ran as new: another session


def _expired(b: HistoryBuilder, key: str, second_at: float, second: dict, first: dict = CREATED) -> None:
    for step, (start, result) in enumerate(((0.0, first), (second_at, second)), start=1):
        b.call("probe.idempotency", start, start + 50, 201, process=f"p{step}-{key}", result=result,
               route="POST /api/v1/recordings/sessions/start", probe="expired", step=step, payload_fp="f1",
               idempotency_key=key)


def _check(b: HistoryBuilder, config: CheckConfig = TTL):
    (verdict,) = check_all(b.build(), Snapshot(config=config), ["idempotent-replay"])
    return verdict


def test_a_key_past_its_ttl_runs_as_new_and_one_within_it_replays() -> None:
    b = HistoryBuilder()
    _expired(b, "late", 5500, AGAIN)  # 5.45 s after the first answer: past 3 s + 0.6 s
    _expired(b, "soon", 1000, REPLAYED)  # at most 1.05 s old: within 3 s - 0.6 s
    verdict = _check(b)
    assert verdict.status == "valid", verdict.violations
    probes = verdict.summary["probes"]
    assert (probes["expired:after-ttl"], probes["expired:before-ttl"]) == (1, 1)


def test_a_replay_past_the_ttl_is_caught() -> None:
    """What the app does with ``idempotency-expiry`` weakened: the stored answer, hours after the TTL."""
    b = HistoryBuilder()
    _expired(b, "late", 5500, REPLAYED)
    _expired(b, "soon", 1000, AGAIN)  # forgotten within the TTL
    verdict = _check(b)
    assert sorted(v.details["type"] for v in verdict.violations) == ["expired-key-replayed", "key-forgotten-early"]


def test_near_the_ttl_nothing_is_judged() -> None:
    assert ttl_margin(3.0) == pytest.approx(0.6) and ttl_margin(1.0) == 0.5
    b = HistoryBuilder()
    _expired(b, "edge-late", 3300, REPLAYED)  # 3.25 to 3.35 s old: either answer is right
    _expired(b, "edge-soon", 2600, AGAIN)  # 2.55 to 2.65 s old
    verdict = _check(b)
    assert verdict.status == "valid" and verdict.summary["probes"]["expired:near-ttl"] == 2


def test_uses_of_a_key_a_ttl_apart_are_not_compared_and_without_a_ttl_they_are() -> None:
    """Two fresh runs under one key 5 s apart: the key expired between them, so they are not one execution."""
    b = HistoryBuilder()
    for start, result in ((0.0, CREATED), (5000.0, AGAIN)):
        b.call("session.start", start, start + 50, 201, process=f"p{start}", result=result, appointment_id="a1",
               idempotency_key="k1", payload_fp="f1")
    assert _check(b).status == "valid"
    assert _check(b, CheckConfig()).status == "invalid"
