"""retention-enforced: after a retention run, nothing of the tenant older than its policy remains (plan F1).

For each tenant whose retention run was acknowledged (``retention.run``
``ok``), the final state must hold none of its calls created more than
``call_days`` before that run began, and none of its appointments that ended
more than ``appointment_days`` before it. The policy is the tenant's
``retention_policies`` row, or the defaults (calls 90 days, appointments 365)
without one. Rows created after the run cannot be older than its cutoff, so
the latest acknowledged run of a tenant is the one judged.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import RETENTION_RUN
from stormproof.harness.invariants.checkers._common import acknowledged
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["DEFAULT_APPOINTMENT_DAYS", "DEFAULT_CALL_DAYS", "NAME", "check_retention_enforced"]

NAME = "retention-enforced"
DEFAULT_CALL_DAYS = 90
DEFAULT_APPOINTMENT_DAYS = 365
_DAY = 86_400.0


@checker(NAME, "safety")
def check_retention_enforced(history: History, snapshot: Snapshot) -> Verdict:
    """No call or appointment older than its tenant's retention survives an acknowledged retention run."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    runs: dict[object, float] = {}
    for invoke, completion in acknowledged(history.pairs_of(RETENTION_RUN)):
        assert completion is not None
        company = completion.result.get("company_id") or invoke.tenant
        runs[str(company)] = max(runs.get(str(company), 0.0), invoke.wall)
    calls, appointments = snapshot.table("calls"), snapshot.table("appointments")
    if calls is None or appointments is None:
        log.cannot("calls or appointments not captured: retention not checked")
        return log.verdict(runs=len(runs))
    policies = {str(row.get("company_id")): row for row in snapshot.table("retention_policies") or ()}
    kept = 0
    for company, began in runs.items():
        policy = policies.get(company, {})
        call_days = float(policy.get("call_days") or DEFAULT_CALL_DAYS)
        appointment_days = float(policy.get("appointment_days") or DEFAULT_APPOINTMENT_DAYS)
        for kind, rows, column, days in (("call", calls, "created_at", call_days),
                                         ("appointment", appointments, "ends_at", appointment_days)):
            cutoff = began - days * _DAY
            for row in rows:
                at = row.get(column)
                if str(row.get("company_id")) == company and isinstance(at, (int, float)) and at < cutoff:
                    kept += 1
                    log.add(f"expired-{kind}-kept",
                            f"{kind} {row.get('id')} of {company} ({column} {(began - at) / _DAY:.0f} days before "
                            f"the retention run) outlived its {days:.0f}-day retention",
                            badness=(cutoff - at) / _DAY, company_id=company, row_id=row.get("id"))
    return log.verdict(runs=len(runs), expired_kept=kept)
