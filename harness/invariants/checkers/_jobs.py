"""What both job checkers read: analyses per Shunya job and the deliveries that mention a job."""

from __future__ import annotations

from collections import defaultdict

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import WEBHOOK_DELIVER
from stormproof.harness.invariants.snapshot import Row

__all__ = ["MAX_OPS_PER_JOB", "analyses_by_job", "deliveries_by_job"]

#: Op indices listed per job in a violation (a job may be delivered many times).
MAX_OPS_PER_JOB = 20


def analyses_by_job(rows: tuple[Row, ...]) -> dict[object, list[Row]]:
    grouped: dict[object, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row.get("shunya_job_id")].append(row)
    return grouped


def deliveries_by_job(history: History) -> dict[object, list[int]]:
    """Completion (or invoke, if none) indices of webhook deliveries, per job id (built once per history and
    shared by both job checkers: read it, do not change it)."""
    return history.view(_deliveries_by_job)


def _deliveries_by_job(history: History) -> dict[object, list[int]]:
    grouped: dict[object, list[int]] = {}
    for invoke, completion in history.pairs_of(WEBHOOK_DELIVER):
        job = invoke.args.get("job_id")
        ops = grouped.get(job)
        if ops is None:
            ops = grouped[job] = []
        if len(ops) < MAX_OPS_PER_JOB:
            ops.append(invoke.index if completion is None else completion.index)
    return grouped
