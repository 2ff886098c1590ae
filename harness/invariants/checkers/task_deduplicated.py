"""task-deduplicated: the same work item is never queued twice at once (plan A4/B2).

Each ``task_records`` row with a ``dedupe_key`` lives from ``created_at``
(enqueued) to ``finished_at`` (succeeded, dead-lettered or dropped; still in
flight: open-ended). Two rows of one task name and key whose lives overlap
mean the work item was enqueued while a task for it was already queued or
running. A new task after the previous one ended is fine: that is a new
round of work, not a duplicate. A violation cites the requests behind both
tasks (``_requests_behind``: the refreshes or the submission that queued them),
so that ``stormproof reproduce`` can replay them.
"""

from __future__ import annotations

from collections import defaultdict

from stormproof.harness.history import History
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
    return log.verdict(work_items=keyed, tasks=sum(len(s) for s in lives.values()))
