"""job-applied-once: each Shunya job's result is applied at most once, and it is the right result.

Webhook deliveries (duplicated, late, out of order) and polling may all
carry one job's result; the side effect is a ``call_analyses`` row, so a job
with two rows was applied twice. When the upstream stub reports what it
produced (``expected_outputs``), the applied ``output_hash`` must equal it.
A result belongs to its job, not to whichever call a delivery names: a
call's analysis must come from the call's own job (``shunya_jobs``), never
from another Shunya job (one superseded for the same call), and a delivery
of a job the app never recorded for that call (``superseded`` in its args)
must not be answered ``applied``.
A job the stub failed (``failed_jobs``: no output) is recorded as failed,
never analysed (``failed-job-analysed``), unless the load itself delivered
it as completed with a valid signature.
A call carries its result: a call with one analysis row has that row's
``lead_score`` and ``outcome`` in the final state (``call-result-differs``),
and a call read answering one analysis answers them too
(``call-read-result-differs``), and never counts more analyses than the call
holds in the end (``call-read-overcounts``): the columns clients read are copied from the
result when it is applied, and a copy from a misnamed field (or from another
delivery's payload) left every other rule green (found by a sweep that
rewrote fields of 2xx answers: no rule read a call's lead score).
Deliveries without a valid signature must be refused 401 and apply nothing
(``_forged_deliveries``); signed deliveries without their result or hash
must apply nothing (``_incomplete_deliveries``). Jobs never applied are the liveness checker's
business (job-applied-eventually).
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import CALL_READ, WEBHOOK_DELIVER
from stormproof.harness.invariants.checkers._forged_deliveries import check_forged_deliveries
from stormproof.harness.invariants.checkers._incomplete_deliveries import check_incomplete_deliveries, is_incomplete
from stormproof.harness.invariants.checkers._jobs import analyses_by_job, deliveries_by_job
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Row, Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_job_applied_once"]

NAME = "job-applied-once"


@checker(NAME, "safety")
def check_job_applied_once(history: History, snapshot: Snapshot) -> Verdict:
    """At most one call_analyses row per Shunya job, with the output the upstream produced."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    rows = snapshot.call_analyses
    if rows is None:
        log.cannot("call_analyses not in snapshot")
        return log.verdict()
    by_job = analyses_by_job(rows)
    deliveries = deliveries_by_job(history)
    expected = snapshot.expected_outputs
    # Jobs the load itself delivered as completed, signed as Shunya signs: the app may apply those whatever
    # the stub did with the job (the load spoke for Shunya), so a failed job's analysis is judged only without.
    vouched = {str(invoke.args.get("job_id")) for invoke, _ in history.pairs_of(WEBHOOK_DELIVER)
               if not invoke.args.get("bad_signature") and not is_incomplete(invoke.args)} \
        if snapshot.failed_jobs else set()
    for job, analyses in by_job.items():
        if len(analyses) > 1:
            log.add(
                "applied-twice",
                f"Shunya job {job} applied {len(analyses)} times",
                deliveries.get(job, ()),
                badness=float(len(analyses)),
                shunya_job_id=job,
                # the call whose job it is: the way back to the request that made it, when no
                # request of the load delivered or read the job (the stub's webhook and the poll did)
                call_id=str(analyses[0].get("call_id")),
                analyses=tuple(str(row.get("id")) for row in analyses),
                applied_by=tuple(str(row.get("applied_by")) for row in analyses),
            )
        if snapshot.failed_jobs is not None and str(job) in snapshot.failed_jobs and str(job) not in vouched:
            log.add("failed-job-analysed", f"Shunya job {job} failed upstream (no output), but the app applied "
                    f"{len(analyses)} analysis row(s) for it", deliveries.get(job, ()), shunya_job_id=job,
                    call_id=str(analyses[0].get("call_id")), analysis=str(analyses[0].get("id")))
        want = expected.get(str(job))
        if want is None:
            continue
        for row in analyses:
            if row.get("output_hash") != want:
                log.add(
                    "wrong-output",
                    f"Shunya job {job}: applied output {row.get('output_hash')} but upstream produced {want}",
                    deliveries.get(job, ()),
                    shunya_job_id=job,
                    analysis=str(row.get("id")),
                )
    forged = check_forged_deliveries(log, history, rows)
    incomplete = check_incomplete_deliveries(log, history, rows)
    foreign = _foreign_results(log, history, snapshot, rows)
    answers = _applied_answers(log, history, by_job)
    statuses = _call_statuses(log, snapshot, by_job)
    per_call: dict[str, list[Row]] = {}  # the analyses of each call, as both call rules read them
    for row in rows:
        per_call.setdefault(str(row.get("call_id")), []).append(row)
    results = _call_results(log, history, snapshot, per_call)
    counts = _call_read_counts(log, history, snapshot, per_call)
    # The failed jobs whose fate this run judged (A1.failed-not-analysed is exercised only by those).
    failed = 0 if snapshot.failed_jobs is None else len(snapshot.failed_jobs - vouched)
    return log.verdict(jobs_applied=len(by_job), analyses=len(rows), jobs_delivered=len(deliveries),
                       forged_deliveries=forged, incomplete_deliveries=incomplete, foreign_results=foreign, failed_jobs_judged=failed,
                       applied_answers_judged=answers, call_statuses_judged=statuses,
                       call_results_judged=results, call_read_counts_judged=counts)


def _applied_answers(log: ViolationLog, history: History, by_job: dict) -> int:
    """A job is applied once, so at most one delivery of it may be answered ``applied``: a second, or one
    for a job the poll applied (its analysis ``applied_by`` poll), tells the sender a result was applied
    that was not (the answer ``duplicate`` exists for it). Returns the jobs judged: those delivered more than
    once, or delivered and applied by the poll (a job delivered once, webhook-applied, risks nothing)."""
    applied: dict[str, list[tuple[int, int]]] = {}
    delivered: dict[str, int] = {}
    for invoke, completion in history.pairs_of(WEBHOOK_DELIVER):
        if completion is None or completion.type != "ok" or invoke.args.get("superseded") \
                or invoke.args.get("bad_signature") or is_incomplete(invoke.args):
            continue
        job = str(invoke.args.get("job_id"))
        delivered[job] = delivered.get(job, 0) + 1
        if completion.result.get("status") == "applied":
            applied.setdefault(job, []).append((invoke.index, completion.index))
    for job, pairs in applied.items():
        rows = by_job.get(job, ())
        polled = bool(rows) and all(str(row.get("applied_by")) == "poll" for row in rows)
        if len(pairs) > 1 or polled:
            log.add("applied-answered-twice",
                    f"Shunya job {job}: {len(pairs)} deliveries answered applied" + (
                        ", and the poll applied it" if polled else "") + f"; the job was applied {len(rows)} "
                    "time(s), the others were duplicates", [i for pair in pairs for i in pair], shunya_job_id=job,
                    answered_applied=len(pairs))
    polled_jobs = {str(job) for job, rows in by_job.items()
                   if rows and all(str(row.get("applied_by")) == "poll" for row in rows)}
    return sum(1 for job, count in delivered.items() if count > 1 or job in polled_jobs)


def _call_statuses(log: ViolationLog, snapshot: Snapshot, by_job: dict) -> int:
    """A call whose one Shunya job was taken in reads its outcome: ``analyzed`` when the job was applied,
    ``analysis_failed`` when Shunya failed it (the job recorded ``failed``). Calls with several jobs (or
    none, or deleted) are left out. Returns the calls judged."""
    jobs, calls = snapshot.table("shunya_jobs"), snapshot.table("calls")
    if jobs is None or calls is None:
        return 0
    status = {str(call.get("id")): call.get("status") for call in calls}
    per_call: dict[str, int] = {}
    for job in jobs:
        per_call[str(job.get("call_id"))] = per_call.get(str(job.get("call_id")), 0) + 1
    judged = 0
    for job in jobs:
        call, job_id = str(job.get("call_id")), str(job.get("shunya_job_id"))
        if per_call[call] != 1 or call not in status:
            continue
        if job.get("status") == "failed" and job.get("processed_output_hash"):
            want = "analysis_failed"
        elif job_id in by_job:
            want = "analyzed"
        else:
            continue
        judged += 1
        if status[call] != want:
            log.add("call-status-stale", f"call {call}: its Shunya job {job_id} was "
                    + ("failed upstream and recorded failed" if want == "analysis_failed" else "applied")
                    + f", but the call reads {status[call]!r}, not {want!r}", shunya_job_id=job_id, call_id=call,
                    status=status[call], expected=want)
    return judged


def _result_fields(result: object) -> tuple[int, str] | None:
    """(lead_score, outcome) of an applied result, when it has both (a failed or empty result has none)."""
    if not isinstance(result, dict):
        return None
    score, outcome = result.get("lead_score"), result.get("outcome")
    if isinstance(score, bool) or not isinstance(score, int) or not isinstance(outcome, str):
        return None
    return score, outcome


def _call_results(log: ViolationLog, history: History, snapshot: Snapshot, per_call: dict[str, list[Row]]) -> int:
    """Calls with one analysis row read its lead_score and outcome, in the final state and in the call reads
    that answered one analysis. Returns the calls and reads judged."""
    calls = snapshot.table("calls")
    if calls is None:
        return 0
    want: dict[str, tuple[tuple[int, str], Row]] = {}
    for call, analyses in per_call.items():
        fields = _result_fields(analyses[0].get("result")) if len(analyses) == 1 else None
        if fields is not None:
            want[call] = (fields, analyses[0])
    deliveries = deliveries_by_job(history)
    judged = 0
    for call_row in calls:
        call = str(call_row.get("id"))
        if call not in want:
            continue
        judged += 1
        (score, outcome), analysis = want[call]
        if (call_row.get("lead_score"), call_row.get("outcome")) != (score, outcome):
            job = analysis.get("shunya_job_id")
            log.add("call-result-differs", f"call {call} has lead score {call_row.get('lead_score')!r} and outcome "
                    f"{call_row.get('outcome')!r}, but its analysis (Shunya job {job}) says {score!r} and "
                    f"{outcome!r}", deliveries.get(job, ()), call_id=call, shunya_job_id=job)
    for invoke, completion in history.pairs_of(CALL_READ):
        if completion is None or completion.status != 200 or completion.result.get("analyses") != 1 \
                or "lead_score" not in completion.result:
            continue
        call = str(invoke.args.get("call_id"))
        if call not in want:
            continue
        judged += 1
        (score, outcome), analysis = want[call]
        read = (completion.result.get("lead_score"), completion.result.get("outcome", outcome))
        if read != (score, outcome):
            log.add("call-read-result-differs", f"call {call} read lead score {read[0]!r} and outcome {read[1]!r}, "
                    f"but its one analysis says {score!r} and {outcome!r}", (invoke.index, completion.index),
                    call_id=call, shunya_job_id=analysis.get("shunya_job_id"))
    return judged


def _call_read_counts(log: ViolationLog, history: History, snapshot: Snapshot,
                      per_call: dict[str, list[Row]]) -> int:
    """A call read's ``analyses`` never exceeds the analyses the call holds in the end (``call-read-overcounts``),
    for a call the final state still has: an analysis goes only with its call (retention, deletion), so more than
    the end holds were never there. A count that lost its call (every tenant's analyses counted) passed every other
    rule: reads-current takes a count above 0 as an applied result, and the lead score is judged only for reads of
    one analysis (found by a source-mutation sweep that dropped criteria of queries, session 36). Returns the reads
    judged."""
    calls = snapshot.table("calls")
    if calls is None:
        return 0
    present = {str(row.get("id")) for row in calls}
    held = {call: len(analyses) for call, analyses in per_call.items()}
    judged = 0
    for invoke, completion in history.pairs_of(CALL_READ):
        if completion is None or completion.status != 200:
            continue
        said = completion.result.get("analyses")
        call = str(invoke.args.get("call_id"))
        if not isinstance(said, int) or isinstance(said, bool) or call not in present:
            continue
        judged += 1
        if said > held.get(call, 0):
            log.add("call-read-overcounts", f"call {call} read with {said} analyses, but it holds "
                    f"{held.get(call, 0)} in the end (an analysis goes only with its call)",
                    (invoke.index, completion.index), call_id=call, read=said, held=held.get(call, 0))
    return judged


def _foreign_results(log: ViolationLog, history: History, snapshot: Snapshot, rows: tuple[Row, ...]) -> int:
    """Results applied to a call that are not its own job's: from the answers, then from the final state."""
    found = 0
    for invoke, completion in history.pairs_of(WEBHOOK_DELIVER):
        if not invoke.args.get("superseded") or completion is None or completion.type != "ok" \
                or completion.result.get("status") != "applied":
            continue
        found += 1
        log.add("superseded-applied",
                f"call {invoke.args.get('call_id')}: a delivery of job {invoke.args.get('job_id')}, which is not "
                "the call's job, was answered applied",
                (invoke.index, completion.index), shunya_job_id=invoke.args.get("job_id"),
                call_id=invoke.args.get("call_id"))
    jobs = snapshot.table("shunya_jobs")
    own = {str(job.get("call_id")): job.get("shunya_job_id") for job in jobs or () if job.get("shunya_job_id")}
    deliveries = deliveries_by_job(history)
    for row in rows:
        call, job = str(row.get("call_id")), row.get("shunya_job_id")
        if call in own and job != own[call]:
            found += 1
            log.add("other-job-result",
                    f"call {call}: its analysis is the result of Shunya job {job}, but the call's job is {own[call]}",
                    deliveries.get(job, ()), shunya_job_id=job, call_id=call, analysis=str(row.get("id")))
    return found
