"""The requests behind the final state's background work: a task's, a Shunya job's, a call's.

Checkers judged on the final state (a task queued twice, a task dropped, a job
never applied) name a task or a job, which no request of the history names:
``stormproof reproduce`` then has nothing to select, and a reader nothing to
look at. These indexes lead back to the requests that caused the work, so a
violation can cite them (its ``ops``):

- a task carries the trace id of the request that enqueued it, or of the
  request whose submit task enqueued it (``task_records.trace_id``, plan E1); the
  history records each request's trace id in ``args["trace_id"]``;
- a refresh's answer names the task it queued (``result["task_id"]``), which
  still holds where trace ids are lost (weakening ``trace-propagation``);
- a task's ``args["job_row_id"]`` names its Shunya job row, whose call an
  acknowledged ``call.submit`` made (its answer's ``id``).

Only requests count whose answer may have acted (any answer but a definite
refusal); the first one found per task is enough, the shrinker does the rest.
Each index is built once per history (``History.view``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import CALL_REFRESH, CALL_SUBMIT
from stormproof.harness.invariants.snapshot import Row, Snapshot

__all__ = ["requests_behind_calls", "requests_behind_tasks", "submits_by_call"]


def _by_trace(history: History) -> dict[str, int]:
    """Trace id -> the invoke index of the request sent with it (the first, if a trace id was reused)."""
    out: dict[str, int] = {}
    for invoke, done in history.pairs():
        trace = invoke.args.get("trace_id")
        if isinstance(trace, str) and trace not in out and _may_have_acted(done):
            out[trace] = invoke.index
    return out


def _by_task(history: History) -> dict[str, int]:
    """Task id -> the refresh whose answer named it."""
    out: dict[str, int] = {}
    for invoke, done in history.pairs_of(CALL_REFRESH):
        task = done.result.get("task_id") if done is not None and done.result else None
        if isinstance(task, str):
            out.setdefault(task, invoke.index)
    return out


def _submits_by_call(history: History) -> dict[str, int]:
    out: dict[str, int] = {}
    for invoke, done in history.pairs_of(CALL_SUBMIT):
        call = done.result.get("id") if done is not None and done.result else None
        if isinstance(call, str) and done is not None and done.status is not None and 200 <= done.status < 300:
            out.setdefault(call, invoke.index)
    return out


def submits_by_call(history: History) -> Mapping[str, int]:
    """Call id -> the invoke index of the acknowledged ``call.submit`` that made it (read only)."""
    return history.view(_submits_by_call)


def _may_have_acted(done: object) -> bool:
    status = getattr(done, "status", None)
    return status is None or 200 <= int(status) < 300


def requests_behind_calls(history: History, calls: Iterable[object]) -> tuple[int, ...]:
    """The acknowledged submissions that made ``calls`` (those the history has), in call order."""
    made = submits_by_call(history)
    return tuple(dict.fromkeys(made[str(c)] for c in calls if str(c) in made))


def requests_behind_tasks(history: History, snapshot: Snapshot, tasks: Iterable[Row]) -> tuple[int, ...]:
    """The requests behind each task of ``tasks`` (ledger rows): by trace id, by a refresh's answer, else
    the submission of its job's call; each task's first found, in the tasks' order."""
    traces, refreshes = history.view(_by_trace), history.view(_by_task)
    calls = {str(row.get("id")): row.get("call_id") for row in snapshot.shunya_jobs or ()}
    submits = submits_by_call(history)
    out: list[int] = []
    for task in tasks:
        args = task.get("args") if isinstance(task.get("args"), Mapping) else {}
        call = calls.get(str(args.get("job_row_id")))
        for found in (traces.get(str(task.get("trace_id"))) if task.get("trace_id") else None,
                      refreshes.get(str(task.get("task_id"))),
                      submits.get(str(call)) if call is not None else None):
            if found is not None:  # (index 0 is a request too)
                if found not in out:
                    out.append(found)
                break
    return tuple(out)
