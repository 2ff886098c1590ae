"""Manual retries of dead letters, judged for dead-letter-accounting (plan C2: a manual retry endpoint).

``POST /dead-letters/{id}/retry`` runs a dead letter's task again, once: the
retry is a new task with its own ledger row, and retrying the same letter
again answers 409. Every answer of the history's ``dead_letter.retry`` is
judged, and the final state with it:

- more than one 2xx for one dead letter is ``dead-letter-retried-twice``
  (the task ran again each time), whether the retries came one after the
  other or at once;
- a 2xx must leave the letter ``retried`` in the final state, naming a task
  that the ledger holds (``dead-letter-retry-unaccounted``);
- a 409 is right only for a letter that was retried (``retried`` in the final
  state); a 404 for a letter of the caller's tenant that exists, or any other
  refusal (400, 403, 422), or a 5xx outside a fault, is
  ``dead-letter-retry-wrong-status``.

No answer and 429 are counted, not judged (see ``_probes``). A letter gone
from the final state (its tenant's data deleted) is judged on its answers only.

The list an operator picks letters from (``GET /dead-letters?status=dead``,
``dead_letter.list`` with ``args.status``) answers only letters of that
status: one ``retried`` among them is ``dead-letter-list-unfiltered`` (an
operator retries it again, or takes a handled failure for an open one; an app
whose filter was dropped passed every scenario, 2026-12-05).
"""

from __future__ import annotations

from collections.abc import Iterable

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import DEAD_LETTER_LIST, DEAD_LETTER_RETRY
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Row

from ._probes import FaultWindows, answer_class

__all__ = ["check_dead_letter_lists", "check_manual_retries"]


def check_dead_letter_lists(log: ViolationLog, history: History) -> int:
    """Judge every 2xx list of dead letters asked for one status; returns how many listed any letter."""
    judged = 0
    for invoke, completion in history.pairs_of(DEAD_LETTER_LIST):
        wanted = invoke.args.get("status")
        if completion is None or wanted is None or not completion.status or not 200 <= completion.status < 300:
            continue
        statuses = completion.result.get("statuses") or ()
        if not statuses:
            continue
        judged += 1
        other = sorted(str(s) for s in statuses if s != wanted)
        if other:
            log.add("dead-letter-list-unfiltered", f"the dead letters listed with status={wanted} include letters "
                    f"{', '.join(other)}: the filter was not applied", (invoke.index, completion.index),
                    tenant=invoke.tenant, wanted=wanted, listed=other)
    return judged


def check_manual_retries(log: ViolationLog, history: History, letters: Iterable[Row],
                         records: Iterable[Row]) -> int:
    """Judge every manual retry of a dead letter; returns how many answers were judged."""
    pairs = history.pairs_of(DEAD_LETTER_RETRY)
    if not pairs:
        return 0
    by_id = {str(row.get("id")): row for row in letters}
    tasks = {record.get("task_id") for record in records}
    faults = FaultWindows(history)
    accepted: dict[str, list[int]] = {}
    judged = 0
    for invoke, completion in pairs:
        if completion is None:
            continue
        kind = answer_class(invoke, completion, faults)
        if kind in ("none", "limited", "excused"):
            continue
        judged += 1
        letter_id = str(invoke.args.get("dead_letter_id"))
        letter = by_id.get(letter_id)
        ops = (invoke.index, completion.index)
        facts = dict(tenant=invoke.tenant, dead_letter_id=letter_id, status=completion.status)
        if kind == "2xx":
            accepted.setdefault(letter_id, []).extend(ops)
            continue
        status = None if letter is None else str(letter.get("status"))
        if completion.status == 409 and status in ("retried", None):
            continue
        if completion.status == 404 and letter is None:
            continue
        why = {409: "although it was never retried (it is still dead)",
               404: "although it exists and is the caller's"}.get(completion.status or 0, "")
        log.add("dead-letter-retry-wrong-status",
                f"retrying dead letter {letter_id} answered {completion.status} {why}".rstrip(), ops, **facts)
    for letter_id, ops in accepted.items():
        if len(ops) > 2:
            log.add("dead-letter-retried-twice", f"dead letter {letter_id} was retried {len(ops) // 2} times "
                    "(each answered 2xx): its task ran again each time, not once", tuple(ops),
                    badness=float(len(ops) // 2), dead_letter_id=letter_id)
        letter = by_id.get(letter_id)
        if letter is None:
            continue
        if str(letter.get("status")) != "retried" or letter.get("retried_task_id") not in tasks:
            log.add("dead-letter-retry-unaccounted", f"dead letter {letter_id} answered a retry, but ends "
                    f"{letter.get('status')} naming task {letter.get('retried_task_id')}, which the ledger "
                    f"{'holds' if letter.get('retried_task_id') in tasks else 'does not hold'}", tuple(ops[:2]),
                    dead_letter_id=letter_id)
    return judged
