"""rate-limit-enforced: no tenant gets more API requests accepted than its limit allows (plan C3).

GCRA lets a tenant through at ``rate`` per second after a burst of
``burst``; so in any one-second window, at most ``rate + burst`` of its
requests may be answered with anything but 429. The history's completion
times are when the client saw the answer, not when the app decided, so the
rate is widened by ``rate_limit_tolerance``. A tenant over the bound in some
second was not limited; the limit that protects the other tenants was not
there. Not checked (valid, with a note) when the run had no limit.
"""

from __future__ import annotations

from collections import Counter

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import NEMESIS, WEBHOOK_DELIVER
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_rate_limit_enforced"]

NAME = "rate-limit-enforced"


@checker(NAME, "safety")
def check_rate_limit_enforced(history: History, snapshot: Snapshot) -> Verdict:
    """Per tenant and per second, accepted (non-429) answers stay within rate + burst."""
    config = snapshot.config
    log = ViolationLog(NAME, "safety", config)
    if config.rate_limit_per_s is None:
        return log.verdict(checked=False, note="the run set no per-tenant rate limit")
    bound = config.rate_limit_per_s * (1 + config.rate_limit_tolerance) + config.rate_limit_burst
    accepted: Counter[tuple[str, int]] = Counter()
    limited = 0
    for invoke, completion in history.pairs():
        if completion is None or invoke.process == NEMESIS or invoke.f == WEBHOOK_DELIVER or invoke.tenant is None:
            continue
        if completion.status is None:
            continue
        if completion.status == 429:
            limited += 1
            continue
        accepted[(invoke.tenant, completion.time_ns // 1_000_000_000)] += 1
    for (tenant, second), count in sorted(accepted.items()):
        if count > bound:
            log.add(
                "over-limit",
                f"tenant {tenant} had {count} requests accepted in second {second} of the run "
                f"(limit {config.rate_limit_per_s:g}/s, burst {config.rate_limit_burst:g}: at most {bound:g})",
                badness=float(count - bound), tenant=tenant, second=second, accepted=count,
            )
    busiest = max(accepted.values(), default=0)
    return log.verdict(checked=True, bound_per_second=bound, busiest_second=busiest, answered_429=limited)
