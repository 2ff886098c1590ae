"""job-applied-eventually (liveness): every job the upstream completed is applied by the end.

The snapshot is taken after faults heal and the system quiesces (see
``stormproof.harness.runner.quiesce``), so a completed job with no ``call_analyses`` row
was lost: the webhook was dropped and polling never picked it up.

When the wait ended with work still progressing (``snapshot.quiescence`` not
quiet, with pending work), an unapplied job may still be applied by it: the
verdict is then ``unknown`` with the reason, never a false ``invalid``. When
nothing is left that could apply it (quiet, or only lost tasks remain), it is
a violation. Applying it twice is job-applied-once's finding, not repeated here.

A job the app never recorded is not its to apply (a submission retried after a lost
answer leaves one upstream), so the rule above reads only recorded jobs. But a client
that refuses Shunya's good answers (taking its 201 Created for an error) records none,
and passed: nothing completed that the app knew of (a mutation sweep, 2026-12-05). So
every call Shunya created a job for must have some job recorded (``job-never-recorded``),
unless the call is gone (deleted) or an answer may have been lost: a fault on anything
but the webhook link (a killed or paused process, the database, Redis) or a wait for quiet
that ended with work pending. Each answer of a healthy stub reaches a healthy app, and a
retry after a lost one records its own job for the same call.

And the end to end promise: in a run whose faults cannot make a task fail for good (none, or
latency, or any fault of the webhook link, which polling makes up for) and a Shunya that answered
every call well (no injected error, refusal or garbage, ``upstream_stats``), every call
acknowledged to ``call.submit`` that the final state still has is analysed (a ``call_analyses``
row), or its job failed or stuck upstream (``failed_jobs``, ``stuck_jobs``):
``call-never-analysed``. Under latency, a task dead-lettered after a transient error (a timeout,
a 5xx) is left to dead-letter-accounting's retry rules. Judged once the wait for quiet found
nothing pending. Found by a source-mutation sweep (session 37): a
worker whose job lookup lost its ``where`` failed every task once two jobs existed, and smoke
passed with 148 tasks dead-lettered and nothing analysed: no job was ever created upstream, so
no rule about completed or created jobs had anything to judge. The violation names the task's
last error, where the ledger has one.

A job whose call is gone from the final state (deleted with its appointment, its tenant, or
by retention) is not judged: an analysis goes with its call (``gone_with_call`` counts them).
Found when lifecycle-under-load, whose deletions take calls, began to judge this rule (a
retention batch that erased every tenant's analyses passed it, 2026-12-06).

A violation cites the submission that made the job's call (``_requests_behind``)
and the deliveries that mentioned the job, and names the call: no request reads
a Shunya job id, so without them ``stormproof reproduce`` had nothing to select.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import CALL_SUBMIT
from stormproof.harness.invariants.checkers._jobs import analyses_by_job, deliveries_by_job
from stormproof.harness.invariants.checkers._requests_behind import requests_behind_calls
from stormproof.harness.invariants.checkers.dead_letter_accounting import TRANSIENT
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
    upstream = snapshot.upstream_job_calls or {}
    existing = None if snapshot.calls is None else {str(row.get("id")) for row in snapshot.calls}
    gone = 0
    for job in missing:
        call = calls.get(job) or upstream.get(job)
        if call is not None and existing is not None and str(call) not in existing:
            gone += 1  # the call went (a deletion, retention) and its analysis with it
            continue
        log.add(
            "never-applied",
            f"Shunya job {job} completed upstream but was never applied{lost}",
            (*requests_behind_calls(history, () if call is None else (call,)), *deliveries.get(job, ())),
            shunya_job_id=job,
            **({} if call is None else {"call_id": str(call)}),
            deliveries_seen=len(deliveries.get(job, ())),
        )
    recorded_judged = _never_recorded(log, history, snapshot)
    analysed_judged = _never_analysed(log, history, snapshot)
    return log.verdict(completed_jobs=len(completed), applied=sum(1 for job in completed if job in applied),
                       gone_with_call=gone, created_calls_judged=recorded_judged,
                       acknowledged_calls_judged=analysed_judged)


def _never_analysed(log: ViolationLog, history: History, snapshot: Snapshot) -> int:
    """Acknowledged calls still there, in a run whose faults cannot fail a task for good and with a Shunya that
    answered every call well, that have no analysis and no job failed or stuck upstream; returns the calls judged
    (0: not judged)."""
    stats, calls, rows = snapshot.upstream_stats, snapshot.calls, snapshot.call_analyses
    if stats is None or calls is None or rows is None or snapshot.upstream_job_calls is None:
        return 0
    faults = _injections(history)
    if stats.get("api_errors_injected") or any(op.args.get("target") not in _HARMLESS_TARGETS
                                               and op.args.get("fault") != "latency" for op in faults):
        return 0  # an error answered, or a fault that may fail a task for good: the call may rightly end failed
    quiescence = snapshot.quiescence
    if quiescence is None or not quiescence.quiet or quiescence.pending:
        return 0  # work may still analyse it
    existing = {str(row.get("id")) for row in calls}
    analysed = {str(row.get("call_id")) for row in rows}
    ended_upstream = {str(call) for job, call in snapshot.upstream_job_calls.items()
                      if job in (snapshot.failed_jobs or ()) or job in (snapshot.stuck_jobs or ())}
    submitted: dict[str, tuple[int, int]] = {}
    for invoke, completion in history.pairs_of(CALL_SUBMIT):
        call = completion.result.get("id") if completion is not None and completion.type == "ok" else None
        if call is not None and str(call) in existing:
            submitted.setdefault(str(call), (invoke.index, completion.index))
    errors = _last_errors(snapshot)
    for call, ops in submitted.items():
        if call in analysed or call in ended_upstream:
            continue
        error = errors.get(call)
        if faults and error is not None and TRANSIENT.search(error):
            continue  # a slow link's timeout, retried its budget: dead-letter-accounting judges that
        log.add("call-never-analysed",
                f"call {call} was acknowledged, Shunya answered every call well and no fault could fail its task for "
                "good, yet it was never analysed" + (f": its task ended with {error[:160]}" if error else ""),
                ops, call_id=call, **({"task_error": error[:300]} if error else {}))
    return len(submitted)


def _last_errors(snapshot: Snapshot) -> dict[str, str]:
    """Call id -> the last error of a task of its job (the ledger's), where one is recorded."""
    jobs = {str(row.get("id")): str(row.get("call_id")) for row in snapshot.shunya_jobs or ()}
    out: dict[str, str] = {}
    for record in snapshot.task_records or ():
        args = record.get("args")
        call = jobs.get(str(args.get("job_row_id"))) if hasattr(args, "get") else None
        if call is not None and record.get("last_error"):
            out[call] = str(record.get("last_error"))
    return out


def _injections(history: History) -> list:
    """The faults the run injected: the nemesis's heals are left out, the final ones name every target (``*``),
    which read as a fault on anything (job-never-recorded was so never judged in a run with any fault)."""
    return [op for op in history.faults() if op.args.get("phase") == "start"]


#: The only fault target under which every answer of the stub still reaches the app and is recorded.
_HARMLESS_TARGETS = frozenset(("webhook",))


def _never_recorded(log: ViolationLog, history: History, snapshot: Snapshot) -> int:
    """Calls Shunya created a job for, still there, with no job recorded by the app; returns calls judged."""
    created = snapshot.upstream_job_calls
    jobs, calls = snapshot.shunya_jobs, snapshot.calls
    if not created or jobs is None or calls is None:
        return 0
    if any(op.args.get("target") not in _HARMLESS_TARGETS for op in _injections(history)):
        return 0  # an answer may have been lost with the process, link or database that carried it
    quiescence = snapshot.quiescence
    if quiescence is not None and not quiescence.quiet and quiescence.pending > 0:
        return 0  # a worker may be about to record the job it was just given
    recorded = {str(row.get("call_id")) for row in jobs if row.get("shunya_job_id")}
    existing = {str(row.get("id")) for row in calls}
    judged = sorted({call for call in created.values() if call in existing})
    for call in judged:
        if call in recorded:
            continue
        upstream = sorted(job for job, of in created.items() if of == call)
        log.add("job-never-recorded",
                f"Shunya created {len(upstream)} job(s) for call {call} ({', '.join(upstream[:3])}) and answered "
                "each with its id, yet the app recorded none: it refused or dropped a good answer, so the call is "
                "never analysed", requests_behind_calls(history, (call,)), call_id=call,
                shunya_job_ids=tuple(upstream))
    return len(judged)
