"""job-applied-eventually (liveness): every job the upstream completed is applied by the end.

The snapshot is taken after faults heal and the system quiesces (see
``stormproof.harness.runner.quiesce``), so a completed job with no ``call_analyses`` row
was lost: the webhook was dropped and polling never picked it up.

When the wait ended with work still progressing (``snapshot.quiescence`` not
quiet, with pending work), an unapplied job may still be applied by it: the
verdict is then ``unknown`` with the reason, never a false ``invalid``. When
nothing is left that could apply it (quiet, or only lost tasks remain), it is
a violation. Applying it twice is job-applied-once's finding, not repeated here.

A violation cites the submission that made the job's call (``_requests_behind``)
and the deliveries that mentioned the job, and names the call: no request reads
a Shunya job id, so without them ``stormproof reproduce`` had nothing to select.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.invariants.checkers._jobs import analyses_by_job, deliveries_by_job
from stormproof.harness.invariants.checkers._requests_behind import requests_behind_calls
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_job_applied_eventually"]

NAME = "job-applied-eventually"


@checker(NAME, "liveness")
def check_job_applied_eventually(history: History, snapshot: Snapshot) -> Verdict:
    """Every job in ``completed_jobs`` has a call_analyses row in the final state."""
    log = ViolationLog(NAME, "liveness", snapshot.config)
    rows = snapshot.call_analyses
    completed = snapshot.completed_jobs
    if rows is None:
        log.cannot("call_analyses not in snapshot")
    if completed is None:
        log.cannot("completed_jobs unknown (upstream stub not consulted)")
    if rows is None or completed is None:
        return log.verdict()
    applied = analyses_by_job(rows)
    deliveries = deliveries_by_job(history)
    missing = [job for job in sorted(completed) if job not in applied]
    quiescence = snapshot.quiescence
    if missing and quiescence is not None and not quiescence.quiet and quiescence.pending > 0:
        log.cannot(f"{len(missing)} completed jobs not applied yet, and work may still apply them: "
                   f"{quiescence.reason}")
        missing = []
    lost = "" if quiescence is None or not quiescence.lost_tasks else (
        f"; {len(quiescence.lost_tasks)} tasks were lost (no broker message, no worker)")
    calls = {row.get("shunya_job_id"): row.get("call_id") for row in snapshot.shunya_jobs or ()}
    for job in missing:
        call = calls.get(job)
        log.add(
            "never-applied",
            f"Shunya job {job} completed upstream but was never applied{lost}",
            (*requests_behind_calls(history, () if call is None else (call,)), *deliveries.get(job, ())),
            shunya_job_id=job,
            **({} if call is None else {"call_id": str(call)}),
            deliveries_seen=len(deliveries.get(job, ())),
        )
    return log.verdict(completed_jobs=len(completed), applied=sum(1 for job in completed if job in applied))
