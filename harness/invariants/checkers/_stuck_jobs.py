"""Jobs Shunya never finishes, judged for dead-letter-accounting (plan C2: never polled forever, never dropped).

A Shunya job that stays pending for good (the stub's ``stuck_rate``: Shunya
lost it) gets no webhook, so only the app's poll can find out. The poll asks
again every ``STORMPROOF_POLL_INTERVAL_MS`` up to ``STORMPROOF_POLL_BUDGET``
polls, then gives up loudly: its task is dead-lettered ("poll budget
exhausted"), where an operator sees it and can retry it by hand.

- a stuck job whose poll tasks all ended, none of them dead-lettered, is
  ``stuck-job-dropped``: the poller stopped asking (it took "pending" for
  done, or gave up quietly), the call waits for its analysis for good, and
  nobody is told;
- a poll tried more often than its budget allows is ``over-budget`` (the rule
  of every task, in dead_letter_accounting), and one still polling at a quiet
  end is left to quiescence.

A job whose row is gone (its call deleted) is not judged: its poll has nothing
left to ask for. Without the stub's word (``snapshot.stuck_jobs`` None: an
external Shunya) nothing is judged.
"""

from __future__ import annotations

from collections import defaultdict

from stormproof.harness.history import History
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Row, Snapshot

from ._requests_behind import requests_behind_tasks
from ._task_traces import POLL_TASK

__all__ = ["check_stuck_jobs"]

_ENDED = frozenset(("succeeded", "dead_lettered"))


def check_stuck_jobs(log: ViolationLog, history: History, snapshot: Snapshot) -> int:
    """Judge every stuck job the app recorded; returns how many were judged (their polls all ended)."""
    stuck, jobs, records = snapshot.stuck_jobs, snapshot.shunya_jobs, snapshot.task_records
    if not stuck or jobs is None or records is None:
        return 0
    row_of = {str(row.get("id")): str(row.get("shunya_job_id")) for row in jobs
              if row.get("shunya_job_id") in stuck}
    polls: dict[str, list[Row]] = defaultdict(list)
    for record in records:
        if record.get("name") == POLL_TASK:
            row = str((record.get("args") or {}).get("job_row_id"))
            if row in row_of:
                polls[row].append(record)
    judged = 0
    for row, tasks in sorted(polls.items()):
        if any(str(task.get("state")) not in _ENDED for task in tasks):
            continue  # still polling: the budget rule and quiescence judge it
        judged += 1
        if any(str(task.get("state")) == "dead_lettered" for task in tasks):
            continue
        attempts = [int(task.get("attempts") or 0) for task in tasks]
        log.add("stuck-job-dropped", f"Shunya job {row_of[row]} never finished, and its {len(tasks)} poll task(s) "
                f"ended succeeded after {sum(attempts)} tries, none dead-lettered: the poller stopped asking, the "
                "call waits for its analysis for good and nobody is told", requests_behind_tasks(history, snapshot,
                                                                                                 tasks),
                job_id=row_of[row], job_row_id=row, poll_tasks=len(tasks), tries=sum(attempts))
    return judged
