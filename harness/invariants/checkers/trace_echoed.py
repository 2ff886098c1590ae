"""trace-echoed: every answer carries X-Trace-Id, the request's own, and so do the tasks it enqueues (plan E1).

The load sends an ``X-Trace-Id`` with every request and records how the
answer's header matched it (``result["trace"]``: ``echoed``, ``other``,
``missing``; see ``stormproof.harness.load.client``). An answer with another id,
or none, breaks the chain from the caller's logs to the app's and its tasks'.
Only answers count: a request with no answer (``info``) says nothing. A history
in which no answer recorded its trace header (an older harness, or a client
that sends none) is ``unknown``, never a pass.

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
    return log.verdict(judged=judged, echoed=judged - len(wrong["other"]) - len(wrong["missing"]), **tasks)
