"""The per-tenant retry budget, judged for dead-letter-accounting (plan C1 item 3).

The promise: one tenant's failing tasks retry at most at the tenant's budget
(``rate`` a second after a ``burst``), and a retry is refused only when that
tenant's own budget is spent: another tenant's failures never cost it its
retries. A refused retry dead-letters its task, and the ledger records the
refusal (``task_records.tries``: an event ``refused``).

From the ledger (PostgreSQL's clock), per tenant, the failure-driven retries
(``retry`` events with a failure count; the next polls of a pending job are
not failures and are not budgeted) and the refusals:

- ``retries-over-budget``: more of one tenant's retries within a window of
  ``length`` seconds than ``rate x (1 + tolerance) x length + burst``;
- ``retry-refused-within-budget``: a refusal for which no window ending at it
  held anything near a spent budget. A GCRA limiter refuses only after some
  window ``[s, t]`` admitted ``rate x (t - s) + burst - 1`` retries; the rule
  asks for ``(1 - tolerance)`` of that, with ``SLACK_S`` either side for the
  time between the decision in Redis and the ledger's write, so a correct
  app's refusal is never flagged however busy the machine.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable

from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Row

from ._windows import busiest, crowded

__all__ = ["SLACK_S", "WINDOWS_S", "check_tenant_retry_budget", "refused_tasks"]

#: Window lengths (s) over which one tenant's retries are counted against its budget.
WINDOWS_S = (1.0, 2.0, 4.0, 8.0)
#: Window lengths (s) searched for the spent budget that justifies a refusal: 0.25 s doubling to 64 s.
_JUSTIFY_S = tuple(0.25 * 2 ** k for k in range(9))
#: Seconds either side of a refusal's window for the gap between the decision and the ledger's write.
SLACK_S = 0.5


def refused_tasks(records: Iterable[Row]) -> set[str]:
    """Task ids whose retry the tenant's budget refused (their dead letter is the budget's, not early)."""
    return {str(record.get("task_id")) for record in records
            if any(isinstance(e, dict) and e.get("event") == "refused" for e in record.get("tries") or ())}


#: At most this many tasks whose requests a retries-over-budget window cites.
_CITED_TASKS = 12


def check_tenant_retry_budget(log: ViolationLog, records: Iterable[Row], rate: float, burst: float,
                              tolerance: float,
                              cite: Callable[[Iterable[Row]], tuple[int, ...]] = lambda rows: ()) -> dict[str, int]:
    """Judge every tenant's retries against its budget and every refusal against its spending. ``cite``
    names the requests behind task rows (``requests_behind_tasks``), so a violation leads to a replayable case."""
    retries: dict[str, list[float]] = defaultdict(list)
    retried: dict[str, list[tuple[float, Row]]] = defaultdict(list)
    refusals: list[tuple[str, float, Row]] = []
    for record in records:
        tenant = str(record.get("company_id"))
        for event in record.get("tries") or ():
            if not isinstance(event, dict) or event.get("at") is None:
                continue
            if event.get("event") == "retry" and event.get("failure") is not None:
                retried[tenant].append((float(event["at"]), record))
            elif event.get("event") == "refused":
                refusals.append((tenant, float(event["at"]), record))
    for tenant, events in retried.items():
        events.sort(key=lambda event: event[0])
        retries[tenant] = [at for at, _ in events]
    for tenant, times in sorted(retries.items()):
        for length in WINDOWS_S:
            bound = rate * (1 + tolerance) * length + burst
            for i, count in crowded(times, length, bound):
                tasks = {id(row): row for _, row in retried[tenant][i:i + count]}
                log.add("retries-over-budget",
                        f"tenant {tenant}: {count} of its tasks' retries within {length:g} s, over its retry budget "
                        f"{rate:g}/s, burst {burst:g}: at most {bound:g}", cite(list(tasks.values())[:_CITED_TASKS]),
                        badness=float(count - bound), tenant=tenant, window_s=length, retries=count, at=times[i])
    for tenant, at, record in sorted(refusals, key=lambda r: r[1]):
        times = retries.get(tenant, [])
        windows = [(bisect_right(times, at + SLACK_S) - bisect_left(times, at - length - SLACK_S), length)
                   for length in _JUSTIFY_S]
        if any(count >= (1 - tolerance) * (rate * length + burst - 1) for count, length in windows):
            continue
        spent = max(windows)
        log.add("retry-refused-within-budget",
                f"task {record.get('name')} {record.get('task_id')} of tenant {tenant} was refused a retry and "
                f"dead-lettered, but the tenant had retried only {spent[0]} time(s) in the {spent[1]:g} s before: "
                f"its budget ({rate:g}/s, burst {burst:g}) was not spent", cite((record,)),
                task_id=record.get("task_id"),
                task_name=record.get("name"), tenant=tenant, at=at, retries_before=spent[0])
    return {"retry_budget_retries_judged": sum(len(t) for t in retries.values()),
            "retry_budget_busiest_second": max((busiest(t, 1.0) for t in retries.values()), default=0),
            "retry_budget_refusals_judged": len(refusals)}
