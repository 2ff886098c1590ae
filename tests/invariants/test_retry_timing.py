"""dead-letter-accounting judges retry waits (plan C1): exponential backoff with full jitter, never a fixed delay.

The ledgers below are built with the app's own delay function, ``retry_delay``, with the fix and with the
weakening ``retry-backoff``, so the checker is fed the waits the app really chooses.
"""

from __future__ import annotations

import random

from stormproof.harness.invariants import CheckConfig, Snapshot, check_all
from stormproof.reference_app.settings import Settings
from stormproof.reference_app.worker.tasks import retry_delay
from tests.invariants.builders import HistoryBuilder

BACKOFF = (50, 200)  # shunya-outage's base and cap, in ms
CONFIG = CheckConfig(task_backoff_ms=BACKOFF)


def _settings(*weakenings: str) -> Settings:
    return Settings(database_url="postgresql://x", redis_url="redis://x", task_backoff_base_ms=BACKOFF[0],
                    task_backoff_cap_ms=BACKOFF[1], weakenings=frozenset(weakenings))


def _ledger(settings: Settings, tasks: int = 20, failures: int = 2, lag_s: float = 0.3, seed: int = 3) -> tuple:
    """``tasks`` tasks that each fail ``failures`` times, then succeed; each retry starts ``lag_s`` late at most."""
    rng = random.Random(seed)
    records = []
    for t in range(tasks):
        now, tries = 1000.0 + t, []
        for failure in range(1, failures + 1):
            tries.append({"event": "start", "at": now})
            now += 0.02
            wait = retry_delay(settings, failure - 1, rng)
            tries.append({"event": "retry", "at": now, "wait_s": wait, "failure": failure, "throttled": False})
            now += wait + rng.uniform(0, lag_s)
        tries.append({"event": "start", "at": now})
        records.append({"task_id": f"t{t}", "name": "shunya.submit_job", "state": "succeeded",
                        "attempts": failures + 1, "tries": tries})
    return tuple(records)


def _check(records: tuple, config: CheckConfig = CONFIG):
    (verdict,) = check_all(HistoryBuilder().build(), Snapshot(task_records=records, dead_letters=(), config=config),
                           ["dead-letter-accounting"])
    return verdict


def test_full_jitter_passes_whatever_the_scheduling_lag() -> None:
    for seed in range(20):
        verdict = _check(_ledger(_settings(), lag_s=5.0, seed=seed))
        assert verdict.status == "valid", verdict.violations
    timing = verdict.summary["retry_timing"]
    assert timing["retries_judged"] == 40 and timing["by_level"][1]["bound_s"] == 0.1


def test_a_fixed_delay_is_caught_at_each_level() -> None:
    """The weakened app waits the base delay every time: within the bound at every level, never jittered."""
    verdict = _check(_ledger(_settings("retry-backoff")))
    assert verdict.status == "invalid"
    assert sorted((v.details["type"], v.details["level"]) for v in verdict.violations) == [
        ("fixed-delay", 0), ("fixed-delay", 1)]
    few = _check(_ledger(_settings("retry-backoff"), tasks=11))  # too few waits per level to tell
    assert few.status == "valid"


def test_over_the_bound_early_and_throttled_retries() -> None:
    records = list(_ledger(_settings(), tasks=2))
    tries = [dict(event) for event in records[0]["tries"]]
    tries[3]["wait_s"] = 0.15  # after failure 2 the bound is min(0.2, 0.05 * 2) = 0.1
    tries[4]["at"] = tries[3]["at"] + 0.15
    records[0] = {**records[0], "tries": tries}
    late = [dict(event) for event in records[1]["tries"]]
    late[2]["at"] = late[1]["at"] - 0.3  # the next try began before the retry was even decided
    records[1] = {**records[1], "tries": late}
    verdict = _check(tuple(records))
    assert sorted(v.details["type"] for v in verdict.violations) == ["backoff-over-bound", "retried-early"]
    # A rate limit's Retry-After floors the wait: not backoff, not judged.
    tries[3]["throttled"] = True
    records[1] = _ledger(_settings(), tasks=2)[1]
    assert _check((records[0], records[1])).status == "valid"


def test_retries_run_before_they_are_due_are_caught_and_counted() -> None:
    """retry-timing's waits (base 1 s, cap 4 s): a relay that publishes a retry as soon as it is written (the
    weakening outbox-due) starts the next try some 50 ms after the retry was decided, whatever the wait."""
    long = (1000, 4000)
    settings = Settings(database_url="postgresql://x", redis_url="redis://x", task_backoff_base_ms=long[0],
                        task_backoff_cap_ms=long[1])
    config = CheckConfig(task_backoff_ms=long)
    kept = _check(_ledger(settings, tasks=6, lag_s=0.2), config)
    assert kept.status == "valid", kept.violations
    judged = kept.summary["retry_waits_judged"]
    waits = [e["wait_s"] for r in _ledger(settings, tasks=6, lag_s=0.2) for e in r["tries"] if e["event"] == "retry"]
    assert judged == sum(1 for w in waits if w > 0.25) > 0
    undue = []
    for record in _ledger(settings, tasks=6, lag_s=0.2):
        tries = [dict(e) for e in record["tries"]]
        for n in range(1, len(tries)):
            if tries[n - 1]["event"] == "retry":
                tries[n]["at"] = tries[n - 1]["at"] + 0.05
        undue.append({**record, "tries": tries})
    verdict = _check(tuple(undue), config)
    assert {v.details["type"] for v in verdict.violations} == {"retried-early"}
    # every wait that the 50 ms start falls short of by more than the slack; the judged ones bound them
    assert len(verdict.violations) == sum(1 for w in waits if w - 0.05 > 0.25) > judged / 2


def test_without_tries_the_timing_is_unknown_and_without_a_backoff_not_judged() -> None:
    records = tuple({k: v for k, v in r.items() if k != "tries"} for r in _ledger(_settings()))
    assert _check(records).status == "unknown"
    assert _check(records, CheckConfig()).status == "valid"
