"""Acknowledged call submissions whose work was never queued, judged for dead-letter-accounting (plan C2).

A call answered 2xx to ``call.submit`` promises that its Shunya job will be
submitted: the app commits the call and its job, and the task that submits the
job must exist, durably, from then on. The ledger (``task_records``) judges
every task that was written; this rule judges the task that never was. An app
that publishes its task after the commit, and dies between the two (or whose
broker refuses the publication), leaves a committed job with no task at all:
nothing in the ledger is in flight, nothing will ever submit the job, and the
other rules of the checker see a balanced ledger.

So, for every such call still in the final state (a deleted call, its job
gone, is not judged): its job was handed to Shunya (``shunya_jobs.shunya_job_id``
set) or some task names the job (``task_records.args.job_row_id``), whatever
its state (the ledger rules judge the state). Otherwise the submission was
dropped, a violation, once the wait for quiescence ended with nothing left
that could still queue it; ``unknown`` while work was still pending.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import CALL_SUBMIT
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Snapshot

__all__ = ["check_unqueued_submissions"]


def check_unqueued_submissions(log: ViolationLog, history: History, snapshot: Snapshot) -> dict[str, int]:
    """Flag every acknowledged call whose job was neither submitted nor given a task; returns counts."""
    acknowledged: dict[str, int] = {}  # call id -> completion index of its first 2xx
    for _, completion in history.pairs_of(CALL_SUBMIT):
        if completion is None or completion.status is None or not 200 <= completion.status < 300:
            continue
        call = completion.result.get("id")
        if call is not None:
            acknowledged.setdefault(str(call), completion.index)
    if not acknowledged:
        return {}
    records, jobs = snapshot.task_records, snapshot.shunya_jobs
    if records is None or jobs is None or (records and "args" not in records[0]):
        log.cannot("task_records (with args) or shunya_jobs not in snapshot: acknowledged submissions not judged")
        return {}
    tasked = {str((record.get("args") or {}).get("job_row_id")) for record in records}
    dropped = []
    judged = 0
    for job in jobs:
        call = str(job.get("call_id"))
        if call not in acknowledged:
            continue
        judged += 1
        if job.get("shunya_job_id") is None and str(job.get("id")) not in tasked:
            dropped.append((call, job))
    quiescence = snapshot.quiescence
    if dropped and quiescence is not None and not quiescence.quiet and quiescence.pending > 0:
        log.cannot(f"{len(dropped)} acknowledged calls have no task for their job yet, and work may still "
                   f"queue it: {quiescence.reason}")
        return {"submissions_judged": judged}
    for call, job in dropped:
        log.add("submission-never-queued",
                f"call {call} was acknowledged ({CALL_SUBMIT} answered 2xx) but its job {job.get('id')} was "
                f"never submitted and no task exists for it: the work was lost between the commit and the "
                f"publication", [acknowledged[call]], call_id=call, job_id=job.get("id"),
                company_id=job.get("company_id"), status=job.get("status"))
    return {"submissions_judged": judged, "submissions_dropped": len(dropped)}
