"""Trace ids from requests to their tasks, judged for trace-echoed (plan E1: trace ids from request to task).

A call answered 2xx to ``call.submit`` (not a replay: a replay enqueues
nothing) was sent with the trace id the history records (``args["trace_id"]``);
its Shunya job's tasks must carry that id in ``task_records.trace_id``:

- its submit task (``shunya.submit_job``, ``args.job_row_id`` = the job) was
  enqueued by the request itself: it carries the request's trace id;
- a poll of the job (``shunya.poll_shunya_job_status``) was enqueued by that
  submit task, or by a refresh of the call: it carries the trace id of one of
  them. A refresh is any ``POST /calls/{id}/refresh`` that may have acted: a 2xx,
  or no answer at all (a lost answer may hide an enqueue), whether the load sent
  it (``call.refresh``) or a probe did (``_acted``: the probes derive their
  routes from the API document, so they refresh calls too: a false alarm with
  every fix on, seen in a plain-Locust smoke run).

A task that is a dead letter's manual retry (``dead_letters.retried_task_id``)
belongs to the retry request, and is not judged; a manually retried submit task
enqueues the job's poll again, so that poll may carry the retry's trace id. A call, job or task gone from
the final state (its data deleted) is not judged either. A history without
trace ids in its args (an older harness) judges nothing; a snapshot without
the columns is ``unknown`` when there was something to judge.

Every task's own log lines are judged too, where the run read them
(``Snapshot.task_log_traces``: the workers' end-of-run line of each task):
a task whose record carries a trace id must log with it
(``trace-not-in-task-log``), for any task, submitted by the load or not.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import CALL_REFRESH, CALL_SUBMIT
from stormproof.harness.invariants.checkers._acted import probe_writes
from stormproof.harness.invariants.checkers._common import possible_span
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Row, Snapshot

__all__ = ["check_task_traces", "SUBMIT_TASK", "POLL_TASK"]

SUBMIT_TASK = "shunya.submit_job"
POLL_TASK = "shunya.poll_shunya_job_status"

#: A refresh route as a probe fills it: the call's id is in the path.
_REFRESH_PATH = re.compile(r"/calls/(?P<id>[^/?]+)/refresh(?:\?|$)")


def check_task_traces(log: ViolationLog, history: History, snapshot: Snapshot) -> dict[str, int]:
    """Judge the trace id of every task of every submitted call; returns counts for the summary."""
    submitted: dict[str, tuple[str, int]] = {}  # call id -> (trace id, completion index)
    for invoke, completion in history.pairs_of(CALL_SUBMIT):
        trace = invoke.args.get("trace_id")
        if trace and completion is not None and completion.status is not None \
                and 200 <= completion.status < 300 and not completion.result.get("replayed") \
                and completion.result.get("id"):
            submitted[str(completion.result["id"])] = (str(trace), completion.index)
    refreshed: dict[str, set[str]] = defaultdict(set)
    for pair in history.pairs_of(CALL_REFRESH):
        if pair[0].args.get("trace_id") and possible_span(pair) is not None:
            refreshed[str(pair[0].args.get("call_id"))].add(str(pair[0].args["trace_id"]))
    for invoke, match, _ in probe_writes(history, "POST", _REFRESH_PATH):
        if invoke.args.get("trace_id"):
            refreshed[match.group("id")].add(str(invoke.args["trace_id"]))
    records, jobs, letters = snapshot.task_records, snapshot.shunya_jobs, snapshot.dead_letters
    if not submitted:
        return _check_task_logs(log, records or (), {}, snapshot.task_log_traces)
    if records is None or jobs is None or (records and "trace_id" not in records[0]):
        log.cannot("task_records (with trace_id and args) or shunya_jobs not in snapshot: task trace ids not judged")
        return {}
    call_of_job = {str(job.get("id")): str(job.get("call_id")) for job in jobs}
    manual = {letter.get("retried_task_id") for letter in letters or ()} - {None}
    # A manual retry of a submit task submits the job again and enqueues its poll, under the retry's trace id.
    for record in records:
        if record.get("task_id") in manual and record.get("name") == SUBMIT_TASK and record.get("trace_id"):
            call = call_of_job.get(str((record.get("args") or {}).get("job_row_id")))
            if call is not None:
                refreshed[call].add(str(record["trace_id"]))
    judged = carried = 0
    for record in records:
        name = record.get("name")
        if name not in (SUBMIT_TASK, POLL_TASK) or record.get("task_id") in manual:
            continue
        args = record.get("args") or {}
        call = call_of_job.get(str(args.get("job_row_id")))
        if call not in submitted:
            continue
        trace, op = submitted[call]
        allowed = {trace} if name == SUBMIT_TASK else {trace} | refreshed.get(call, set())
        judged += 1
        got = record.get("trace_id")
        if got in allowed:
            carried += 1
            continue
        what = "the request's" if name == SUBMIT_TASK else "the submitting request's or a refresh's"
        log.add("trace-not-in-task", f"task {name} {record.get('task_id')} of call {call} carries trace id "
                f"{got!r}, not {what} ({trace})", [op], task_id=record.get("task_id"), task_name=name,
                call_id=call, trace_id=got, expected=trace)
    counts = {"tasks_judged": judged, "tasks_traced": carried}
    ops = {task: submitted[call][1] for task, call in ((str(r.get("task_id")), call_of_job.get(
        str((r.get("args") or {}).get("job_row_id")))) for r in records) if call in submitted}
    counts.update(_check_task_logs(log, records, ops, snapshot.task_log_traces))
    return counts


def _check_task_logs(log: ViolationLog, records: tuple[Row, ...], ops: Mapping[str, int],
                     traces: Mapping[str, tuple[str | None, ...]] | None) -> dict[str, int]:
    """Every end-of-run log line of a task whose record carries a trace id carries that id (plan E1: the
    trace id in every log line of the task; ``Snapshot.task_log_traces``). Nothing judged without logs.
    ``ops`` names the history index of the request that submitted a task's call, where there is one."""
    if traces is None:
        return {}
    judged = 0
    for record in records:
        want, task = record.get("trace_id"), str(record.get("task_id"))
        lines = traces.get(task)
        if not want or not lines:
            continue
        judged += 1
        wrong = [got for got in lines if got != want]
        if wrong:
            op = ops.get(task)
            log.add("trace-not-in-task-log", f"task {record.get('name')} {task} carries trace id {want!r} in its "
                    f"record, but {len(wrong)} of its {len(lines)} log lines carry {wrong[0]!r}",
                    [] if op is None else [op], task_id=task, task_name=record.get("name"), trace_id=want,
                    logged=wrong[0])
    return {"task_logs_judged": judged}
