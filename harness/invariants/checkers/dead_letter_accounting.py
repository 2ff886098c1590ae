"""dead-letter-accounting: every enqueued task is accounted for; nothing silently dropped.

``task_records`` has one row per enqueue. By the end each row is
``succeeded`` or ``dead_lettered`` (with a ``dead_letters`` row). A
``dropped`` row, or any other state, is work that vanished. The summary
shows the balance ``enqueued = succeeded + dead_lettered + in_flight``.

A row still in flight (queued/running/retrying) is judged by how the wait for
quiescence ended (``snapshot.quiescence``, see ``stormproof.harness.runner.quiesce``):

- *lost* (in flight in the ledger, but no broker message and no worker holds
  it): nothing will ever finish it, a violation;
- otherwise, when the system was not quiet: it may still finish, so the
  verdict is ``unknown`` with the reason and the backlog, never a pass and
  never a false ``invalid``;
- in flight although the system was seen quiet (enqueued after the wait):
  ``unknown`` too.

Without a quiescence measure (a snapshot built by hand), in-flight rows
beyond ``CheckConfig.max_in_flight_tasks`` are violations, as before.

Manual retries of dead letters (each retried once, every answer right, the
retried task in the ledger) are judged by ``_manual_retry``.
"""

from __future__ import annotations

from collections import Counter

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import DEAD_LETTER_RETRY
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._manual_retry import check_manual_retries

__all__ = ["NAME", "check_dead_letter_accounting"]

NAME = "dead-letter-accounting"
IN_FLIGHT = frozenset(("queued", "running", "retrying"))
FINISHED = frozenset(("succeeded", "dead_lettered"))

#: Task ids listed in the in-flight violation.
_LISTED = 20


@checker(NAME, "safety")
def check_dead_letter_accounting(history: History, snapshot: Snapshot) -> Verdict:
    """Tasks end succeeded or dead-lettered (with a dead-letter row); none dropped or left in flight."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    records = snapshot.task_records
    if records is None:
        log.cannot("task_records not in snapshot")
        return log.verdict()
    states: Counter[str] = Counter()
    in_flight: list[object] = []
    dead_lettered: list[object] = []
    for record in records:
        state = str(record.get("state"))
        states[state] += 1
        if state in IN_FLIGHT:
            in_flight.append(record.get("task_id"))
        elif state == "dead_lettered":
            dead_lettered.append(record.get("task_id"))
        elif state not in FINISHED:
            log.add(
                "dropped" if state == "dropped" else "unaccounted",
                f"task {record.get('name')} {record.get('task_id')} ended {state} after "
                f"{record.get('attempts')} attempts",
                badness=float(record.get("attempts") or 0),
                task_id=record.get("task_id"),
                task_name=record.get("name"),
                company_id=record.get("company_id"),
                state=state,
            )
    limit = snapshot.config.max_in_flight_tasks
    quiescence = snapshot.quiescence
    if quiescence is None:
        if len(in_flight) > limit:
            log.add(
                "in-flight-at-cutoff",
                f"{len(in_flight)} tasks still in flight at the snapshot (allowed {limit})",
                badness=float(len(in_flight)),
                task_ids=tuple(in_flight[:_LISTED]),
            )
    else:
        lost = [record for record in records if record.get("task_id") in quiescence.lost_tasks
                and str(record.get("state")) in IN_FLIGHT]
        for record in lost:
            log.add(
                "lost",
                f"task {record.get('name')} {record.get('task_id')} is {record.get('state')} in the ledger, but no "
                f"broker message or worker holds it: nothing will ever finish it",
                badness=float(record.get("attempts") or 0),
                task_id=record.get("task_id"),
                task_name=record.get("name"),
                company_id=record.get("company_id"),
                state=record.get("state"),
            )
        progressing = len(in_flight) - len(lost)
        if progressing > limit:
            if quiescence.quiet:
                log.cannot(f"{progressing} tasks in flight at the snapshot, enqueued after the system was seen "
                           f"quiet ({quiescence.summary()})")
            else:
                log.cannot(f"{progressing} tasks may still finish: {quiescence.reason}")
    letters = snapshot.dead_letters
    retries = 0
    if letters is None:
        if dead_lettered or history.pairs_of(DEAD_LETTER_RETRY):
            log.cannot("dead_letters not in snapshot")
    else:
        retries = check_manual_retries(log, history, letters, records)
        lettered = {letter.get("task_id") for letter in letters}
        for task_id in dead_lettered:
            if task_id not in lettered:
                log.add("dead-letter-missing", f"task {task_id} is dead_lettered but has no dead_letters row",
                        task_id=task_id)
    succeeded, dead = states["succeeded"], states["dead_lettered"]
    return log.verdict(
        enqueued=len(records),
        succeeded=succeeded,
        dead_lettered=dead,
        in_flight=len(in_flight),
        states=dict(states),
        balanced=len(records) == succeeded + dead + len(in_flight),
        quiescence=None if quiescence is None else quiescence.to_dict(),
        manual_retries=retries,
    )
