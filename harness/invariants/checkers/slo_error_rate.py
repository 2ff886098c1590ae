"""slo-error-rate (SLO, plan E5): the share of client operations without a definite answer.

An error is a completion that is ``info`` (timeout, reset, 5xx, exception)
or carries a 5xx status, or an invoke never completed; ``fail`` answers are
the API's definite refusals and not errors. Nemesis ops do not count. The
threshold is ``CheckConfig.error_rate_max`` (default 1%).
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.invariants.checkers._answers import answers
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_slo_error_rate"]

NAME = "slo-error-rate"

#: Error ops listed in the violation.
_LISTED = 20


@checker(NAME, "slo")
def check_slo_error_rate(history: History, snapshot: Snapshot) -> Verdict:
    """Errors (info or 5xx) / client completions <= error_rate_max."""
    log = ViolationLog(NAME, "slo", snapshot.config)
    seen = answers(history)
    totals, errors = seen.totals, seen.errors
    examples = seen.error_examples[:_LISTED]
    total, failed = sum(totals.values()), sum(errors.values())
    if total == 0:
        log.cannot("no client operations in the history")
        return log.verdict()
    rate = failed / total
    threshold = snapshot.config.error_rate_max
    if rate > threshold:
        log.add("error-rate", f"error rate {rate:.2%} ({failed}/{total}) above {threshold:.2%}", examples,
                badness=rate, rate=rate, errors=failed, total=total)
    return log.verdict(
        rate=rate,
        errors=failed,
        total=total,
        threshold=threshold,
        by_f={f: {"errors": errors[f], "total": totals[f], "rate": errors[f] / totals[f]} for f in sorted(totals)},
    )
