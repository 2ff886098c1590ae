"""trace-echoed: every answer carries X-Trace-Id, the request's own, and so do the tasks it enqueues (plan E1).

The load sends an ``X-Trace-Id`` with every request and records how the
answer's header matched it (``result["trace"]``: ``echoed``, ``other``,
``missing``; see ``stormproof.harness.load.client``). An answer with another id,
or none, breaks the chain from the caller's logs to the app's and its tasks'.
Only answers count: a request with no answer (``info``) says nothing. A history
in which no answer recorded its trace header (an older harness, or a client
that sends none) is ``unknown``, never a pass.

A request answered 500 (an error no handler maps) must have left an error log
line with its trace id (``error-log-untraced``; plan E1, "add trace ID to all
error logs"), where the run read the app's JSON log lines.

The trace must also reach the tasks (``_task_traces``): a call submitted with
trace id T (the history's ``args["trace_id"]``) has its submit task, and the
polls of its job, recorded with T in ``task_records.trace_id``.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.invariants.checkers._answers import answers
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._common import api_kills
from ._task_traces import check_task_traces

__all__ = ["NAME", "check_trace_echoed"]

NAME = "trace-echoed"

#: Ops listed per violation.
_LISTED = 20


@checker(NAME, "safety")
def check_trace_echoed(history: History, snapshot: Snapshot) -> Verdict:
    """Each answered request's X-Trace-Id is the one it sent."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    seen = answers(history)
    judged, wrong = seen.traced, seen.trace_wrong
    if not judged:
        log.cannot("no answer in the history recorded its X-Trace-Id")
    for kind, ops in wrong.items():
        if ops:
            what = "another X-Trace-Id than the one sent" if kind == "other" else "no X-Trace-Id"
            log.add(f"trace-{kind}", f"{len(ops)} of {judged} answers carried {what}", ops[:_LISTED],
                    badness=float(len(ops)), answers=len(ops))
    tasks = check_task_traces(log, history, snapshot)
    # Answers of errors (a 5xx) are judged like any other; counted apart for E1.trace-on-error-answers, since an
    # app may answer them from a layer outside the one that sets the trace header.
    errors = sum(1 for _, completion in seen.server_errors if completion.result.get("trace") is not None)
    logged = _error_logs(log, history, snapshot)
    return log.verdict(judged=judged, echoed=judged - len(wrong["other"]) - len(wrong["missing"]),
                       error_answers_judged=errors, error_logs_judged=logged, **tasks)


def _error_logs(log: ViolationLog, history: History, snapshot: Snapshot) -> int:
    """Every request answered 500 (not a replay) left an error log line with its trace id (plan E1: "add trace ID
    to all error logs"); returns how many such requests were judged. Not judged without error lines to read
    (``snapshot.error_log_traces`` None: the app does not log JSON lines, or the run read no log); a shortfall
    under a kill of the API is ``unknown`` (a process killed mid-request may die before its line is written)."""
    traces = snapshot.error_log_traces
    if traces is None:
        return 0
    logged = {trace for trace in traces if trace}
    judged, missing = 0, []
    for invoke, completion in answers(history).server_errors:
        if completion.status != 500 or completion.result.get("replayed"):
            continue
        trace = invoke.args.get("trace_id")
        if not trace:
            continue
        judged += 1
        if trace not in logged:
            missing += [invoke.index, completion.index]
    if not missing:
        return judged
    untraced = traces.get(None, 0)
    said = (f"{len(missing) // 2} of {judged} requests answered 500 left no error log line with their trace id "
            f"({untraced} error line(s) carry none)")
    if api_kills(history):
        log.cannot(f"{said}; the API was killed during the run, and may have died before writing one")
    else:
        log.add("error-log-untraced", said, tuple(missing[:2 * _LISTED]), badness=float(len(missing) // 2),
                requests=len(missing) // 2, untraced_lines=untraced)
    return judged
