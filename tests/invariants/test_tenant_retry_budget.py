"""dead-letter-accounting judges the per-tenant retry budget (plan C1 item 3) from the task ledger.

A tenant's failure-driven retries stay within its budget (rate a second after a burst), and a retry is
refused (its task dead-lettered) only when that tenant's own budget is spent.
"""

from __future__ import annotations

from stormproof.harness.invariants import CheckConfig, Snapshot, check_all
from tests.invariants.builders import HistoryBuilder

RATE, BURST = 2.0, 6.0  # the retry-budget scenario's
CONFIG = CheckConfig(retry_budget_per_s=RATE, retry_budget_burst=BURST, task_max_retries=3)


def _task(n: int, tenant: str, retries_at: list[float], *, refused_at: float | None = None) -> dict:
    """A task of ``tenant`` that failed and retried at ``retries_at``, then succeeded or (refused) was
    dead-lettered when the budget refused its next retry."""
    tries: list[dict] = []
    for failure, at in enumerate(retries_at, 1):
        tries += [{"event": "start", "at": at - 0.01},
                  {"event": "retry", "at": at, "wait_s": 0.01, "failure": failure, "throttled": False}]
    if refused_at is not None:
        tries += [{"event": "start", "at": refused_at - 0.01}, {"event": "refused", "at": refused_at}]
    else:
        tries.append({"event": "start", "at": (retries_at or [0.0])[-1] + 0.02})
    return {"task_id": f"t{n}", "name": "shunya.submit_job", "company_id": tenant,
            "state": "dead_lettered" if refused_at is not None else "succeeded",
            "attempts": len(retries_at) + 1, "tries": tries}


def _letters(records: list[dict]) -> tuple[dict, ...]:
    return tuple({"task_id": r["task_id"], "task_name": r["name"], "company_id": r["company_id"],
                  "attempts": r["attempts"], "status": "dead",
                  "error": "RetryBudgetExhausted: the tenant's retry budget is spent; last failure: "
                           "ShunyaUnavailable: /jobs: HTTP 503"} for r in records if r["state"] == "dead_lettered")


def _check(records: list[dict], config: CheckConfig = CONFIG):
    (verdict,) = check_all(HistoryBuilder().build(), Snapshot(task_records=tuple(records),
                                                               dead_letters=_letters(records), config=config),
                           ["dead-letter-accounting"])
    return verdict


def _noisy_within_budget() -> list[dict]:
    """Tenant A spends its burst at t=100, then retries at its rate; the next retry over it is refused."""
    records = [_task(n, "A", [100.0 + 0.01 * n]) for n in range(6)]
    records += [_task(6 + n, "A", [101.0 + 0.5 * n]) for n in range(10)]
    records.append(_task(16, "A", [], refused_at=105.6))
    return records


def test_retries_within_the_budget_and_a_refusal_once_it_is_spent_pass() -> None:
    records = _noisy_within_budget() + [_task(20, "B", [100.5]), _task(21, "B", [103.0])]
    verdict = _check(records)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["retry_budget_retries_judged"] == 18
    assert verdict.summary["retry_budget_refusals_judged"] == 1
    # The refused task's letter, one failure short of its retries, is the budget's: not gave-up-early.


def test_retries_over_the_budget_are_caught() -> None:
    """No budget (the weakening tenant-retry-budget): 30 retries of one tenant within 2 s."""
    records = [_task(n, "A", [100.0 + 0.06 * n]) for n in range(30)]
    verdict = _check(records)
    assert verdict.status == "invalid"
    assert {v.details["type"] for v in verdict.violations} == {"retries-over-budget"}
    assert _check(records, CheckConfig(task_max_retries=3)).status == "valid"  # the budget not known: not judged


def test_a_refusal_while_the_tenant_retried_little_is_caught() -> None:
    """One budget for all tenants (tenant-retry-budget-shared): A spends it, B's first retry is refused."""
    records = _noisy_within_budget() + [_task(20, "B", [100.5]), _task(21, "B", [], refused_at=104.0)]
    verdict = _check(records)
    assert [(v.details["type"], v.details["tenant"]) for v in verdict.violations] == [
        ("retry-refused-within-budget", "B")]
    assert verdict.violations[0].details["retries_before"] == 1


def test_budget_violations_cite_the_requests_behind_their_tasks() -> None:
    """A task names no request; its trace id leads to the one that enqueued it, so both budget rules (and
    gave-up-early, on the refused task's letter had it been early) cite requests stormproof reproduce can
    replay (tenant-retry-budget had nothing to replay)."""
    over = [{**_task(n, "A", [100.0 + 0.06 * n]), "trace_id": f"tr{n}"} for n in range(30)]
    b = HistoryBuilder()
    sent = {n: b.call("call.submit", n, n + 1, 202, tenant="A", appointment_id=f"a{n}", trace_id=f"tr{n}")[0]
            for n in range(30)}
    (verdict,) = check_all(b.build(), Snapshot(task_records=tuple(over), dead_letters=_letters(over), config=CONFIG),
                           ["dead-letter-accounting"])
    (first, *_) = [v for v in verdict.violations if v.details["type"] == "retries-over-budget"]
    assert first.ops and set(first.ops) <= {b.at(i) for i in sent.values()}
    refused = _noisy_within_budget() + [_task(20, "B", [100.5]),
                                        {**_task(21, "B", [], refused_at=104.0), "trace_id": "trB"}]
    b = HistoryBuilder()
    made = b.call("call.submit", 0, 1, 202, tenant="B", appointment_id="b1", trace_id="trB")[0]
    (verdict,) = check_all(b.build(), Snapshot(task_records=tuple(refused), dead_letters=_letters(refused),
                                               config=CONFIG), ["dead-letter-accounting"])
    (violation,) = [v for v in verdict.violations if v.details["type"] == "retry-refused-within-budget"]
    assert violation.ops == (b.at(made),)
