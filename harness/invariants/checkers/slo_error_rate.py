"""slo-error-rate (SLO, plan E5): the share of client operations without a definite answer.

An error is a completion that is ``info`` (timeout, reset, 5xx, exception)
or carries a 5xx status, or an invoke never completed; ``fail`` answers are
the API's definite refusals and not errors. Nemesis ops do not count. The
threshold is ``CheckConfig.error_rate_max`` (default 1%).

Operations that overlap an outage of the API itself are left out and counted
apart: a kill or pause of the ``app`` process, or a ``down``, ``timeout`` or
``reset_peer`` toxic on the clients' ``app`` link. While the harness has taken
the API away on purpose, every request fails by design; counting them measured
the schedule's downtime, not the app (relay-worker-kill's all-on runs showed
53 to 85% errors in 3 of 10 tries). Faults of the app's dependencies (its
database, Redis, Shunya, the workers) stay in: how the API answers while they
are gone is what the SLO is about.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import NEMESIS
from stormproof.harness.invariants.checkers._answers import answers, load_stopped
from stormproof.harness.invariants.checkers._probes import FaultWindows
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_slo_error_rate"]

NAME = "slo-error-rate"

#: Error ops listed in the violation.
_LISTED = 20
#: The API's process and its clients' link, as the stack recipe names them.
API = "app"
#: Faults that take the API away from its clients (process faults, and toxics that cut the link).
_OUTAGES = frozenset(("kill", "pause", "down", "timeout", "reset_peer"))


def _api_outage(fault: object, target: object) -> bool:
    return target == API and fault in _OUTAGES


def _during_outages(history: History, outages: FaultWindows) -> tuple[int, int, list[int]]:
    """Client ops overlapping an outage of the API: (ops, errors among them, the first errors outside them).

    An op that never completed counts at its invoke alone: it may have been sent
    long before an outage, and the outage does not explain it.
    """
    total = errors = 0
    outside: list[tuple[int, int]] = []  # (invoke index, listed index) of errors outside every outage
    for pairs in history.grouped().values():
        for invoke, completion in pairs:
            if invoke.process == NEMESIS:
                continue
            if completion is not None and completion.type == "info" and load_stopped(completion):
                continue  # the shared pass does not count these either
            error = completion is None or completion.type == "info" or (completion.status or 0) >= 500
            end = completion.time_ns if completion is not None else invoke.time_ns
            if outages.overlaps(invoke.time_ns, end):
                total += 1
                errors += error
            elif error:
                outside.append((invoke.index, completion.index if completion is not None else invoke.index))
    outside.sort()
    return total, errors, [listed for _, listed in outside[:_LISTED]]


@checker(NAME, "slo")
def check_slo_error_rate(history: History, snapshot: Snapshot) -> Verdict:
    """Errors (info or 5xx) / client completions <= error_rate_max."""
    log = ViolationLog(NAME, "slo", snapshot.config)
    seen = answers(history)
    totals, errors = seen.totals, seen.errors
    examples = seen.error_examples[:_LISTED]
    total, failed = sum(totals.values()), sum(errors.values())
    outages = FaultWindows(history, only=_api_outage)
    excluded = excluded_errors = 0
    if len(outages):
        excluded, excluded_errors, examples = _during_outages(history, outages)
        total, failed = total - excluded, failed - excluded_errors
    outside = f" outside {len(outages)} outage(s) of the API ({excluded} ops left out)" if len(outages) else ""
    if total == 0:
        log.cannot(f"no client operations in the history{outside}")
        return log.verdict(api_outages=len(outages), outage_ops=excluded, outage_errors=excluded_errors)
    rate = failed / total
    threshold = snapshot.config.error_rate_max
    if rate > threshold:
        log.add("error-rate", f"error rate {rate:.2%} ({failed}/{total}){outside} above {threshold:.2%}", examples,
                badness=rate, rate=rate, errors=failed, total=total)
    return log.verdict(
        rate=rate,
        errors=failed,
        total=total,
        threshold=threshold,
        api_outages=len(outages),
        outage_ops=excluded,
        outage_errors=excluded_errors,
        by_f={f: {"errors": errors[f], "total": totals[f], "rate": errors[f] / totals[f]} for f in sorted(totals)},
    )
