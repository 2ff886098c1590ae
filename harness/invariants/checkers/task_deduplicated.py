"""task-deduplicated: the same work item is never queued twice at once (plan A4/B2).

Each ``task_records`` row with a ``dedupe_key`` lives from ``created_at``
(enqueued) to ``finished_at`` (succeeded, dead-lettered or dropped; still in
flight: open-ended). Two rows of one task name and key whose lives overlap
mean the work item was enqueued while a task for it was already queued or
running. A new task after the previous one ended is fine: that is a new
round of work, not a duplicate. A violation cites the requests behind both
tasks (``_requests_behind``: the refreshes or the submission that queued them),
so that ``stormproof reproduce`` can replay them.

A refresh's answer is judged too (``refresh-answer-untrue``): ``deduplicated:
false`` names the poll this request queued (its ledger row created while the
request ran), ``deduplicated: true`` names a poll of the same call's job that
was in flight at some moment while the request ran. A de-duplication that
trusts a past task (``task_exists_by_unique_key`` without the task's state, a
Redis mark never released) answers ``true`` with a task that ended long
before, and the manual nudge then polls nothing: the call waits on a webhook
that may never come. The app's stamps are placed on the load's clock by the
offset the rows' creation times give (``_created_at.clock_offset``).
"""

from __future__ import annotations

from collections import defaultdict

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import CALL_REFRESH
from stormproof.harness.invariants.checkers._created_at import TOLERANCE_S, clock_offset
from stormproof.harness.invariants.checkers._requests_behind import requests_behind_tasks
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_task_deduplicated"]

NAME = "task-deduplicated"


@checker(NAME, "safety")
def check_task_deduplicated(history: History, snapshot: Snapshot) -> Verdict:
    """No two tasks for one (name, dedupe_key) in flight at the same time."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    records = snapshot.task_records
    if records is None:
        log.cannot("task_records not in snapshot")
        return log.verdict()
    if records and "created_at" not in records[0]:
        log.cannot("task_records lack created_at/finished_at: lifetimes cannot be compared")
        return log.verdict()
    lives: dict[tuple[object, object], list[tuple[float, float, object]]] = defaultdict(list)
    by_id = {record.get("task_id"): record for record in records}
    for record in records:
        key = record.get("dedupe_key")
        created = record.get("created_at")
        if key is None or created is None:
            continue
        finished = record.get("finished_at")
        lives[(record.get("name"), key)].append(
            (float(created), float(finished) if finished is not None else float("inf"), record.get("task_id"))
        )
    keyed = 0
    for (name, key), spans in lives.items():
        keyed += 1
        spans.sort()
        open_until, open_task = spans[0][1], spans[0][2]
        for created, finished, task_id in spans[1:]:
            if created < open_until:
                log.add(
                    "duplicate-in-flight",
                    f"{name} for {key}: task {task_id} was enqueued while task {open_task} was still in flight",
                    requests_behind_tasks(history, snapshot, (by_id[open_task], by_id[task_id])),
                    badness=(open_until - created) if open_until != float("inf") else 1e9,
                    task_name=name, dedupe_key=key, tasks=(open_task, task_id),
                )
            if finished > open_until:
                open_until, open_task = finished, task_id
    refreshes = _judge_refreshes(log, history, snapshot, by_id)
    return log.verdict(work_items=keyed, tasks=sum(len(s) for s in lives.values()), refreshes_judged=refreshes)


def _judge_refreshes(log: ViolationLog, history: History, snapshot: Snapshot, by_id: dict[object, dict]) -> int:
    """Judge every 202 refresh answer against the task ledger; returns how many were judged."""
    jobs = {str(row.get("call_id")): str(row.get("id")) for row in snapshot.shunya_jobs or ()}
    calls = {str(row.get("id")) for row in snapshot.calls or ()}
    offset = clock_offset(history, snapshot)
    judged = 0
    for invoke, completion in history.acknowledged_of(CALL_REFRESH):
        assert completion is not None
        task_id, deduplicated = completion.result.get("task_id"), completion.result.get("deduplicated")
        call = str(invoke.args.get("call_id"))
        if not isinstance(task_id, str) or not isinstance(deduplicated, bool):
            continue
        ops = (invoke.index, completion.index)
        said = f"refresh of call {call} answered deduplicated: {str(deduplicated).lower()} with task {task_id}"
        record = by_id.get(task_id)
        if record is None:
            if call in calls:  # a tenant's deletion takes its ledger with it; a live call's ledger is whole
                judged += 1
                log.add("refresh-answer-untrue", f"{said}, which the task ledger never held", ops,
                        call=call, task=task_id)
            continue
        judged += 1
        job = jobs.get(call)
        if job is not None and str(record.get("dedupe_key")) != job:
            log.add("refresh-answer-untrue", f"{said}, a task of work item {record.get('dedupe_key')}, not the "
                    f"poll of the call's job {job}", ops, call=call, task=task_id)
            continue
        created, finished = record.get("created_at"), record.get("finished_at")
        if offset is None or not isinstance(created, (int, float)) or not invoke.wall or not completion.wall:
            continue
        end = float(finished) if isinstance(finished, (int, float)) else float("inf")
        # The offsets (app clock minus load clock) under which the answer is true, against those the rows give.
        low = float(created) - completion.wall
        high = (end if deduplicated else float(created)) - invoke.wall
        if low <= offset[1] + TOLERANCE_S and high >= offset[0] - TOLERANCE_S:
            continue
        if deduplicated and high < offset[0] - TOLERANCE_S:
            why = f"{offset[0] - high:.3f} s before the refresh was sent that task had ended: no poll was queued"
        elif deduplicated:
            why = f"that task was created {low - offset[1]:.3f} s after the refresh was answered"
        else:
            why = (f"that task was created {low - offset[1]:.3f} s after the refresh was answered" if low > offset[1]
                   else f"that task was created {offset[0] - high:.3f} s before the refresh was sent")
        log.add("refresh-answer-untrue", f"{said}, but {why} (tolerance {TOLERANCE_S:g} s)", ops,
                badness=max(low - offset[1], offset[0] - high), call=call, task=task_id)
    return judged
