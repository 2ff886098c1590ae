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

The retry policy (plan C1): a dead letter of a transient failure (a 5xx, a
timeout, a failed connection, a rate limit) whose task failed fewer than 1 +
``CheckConfig.task_max_retries`` times gave up early (``gave-up-early``).
The retry budget: a task tried more times than its budget allows
(``CheckConfig.task_try_budget``, from the budgets the run gives the app) was
retried past it, whatever its state now: one that exhausts its budget must be
dead-lettered, not tried again. A run that kills processes re-runs a task whose
worker died mid-try (a try that neither failed nor finished), so there an
excess is ``unknown``.

An acknowledged call submission whose job has no task at all (the work lost
between the commit and the publication, so the ledger never saw it) is judged
by ``_unqueued_submissions``. A violation about tasks cites the requests behind
them (``_requests_behind``), so that ``stormproof reproduce`` can replay them. Manual retries of dead letters (each retried once, every answer right, the
retried task in the ledger) are judged by ``_manual_retry``; the wait of each
retry after a failure (exponential backoff with full jitter, plan C1) by
``_backoff``, when the run gives the app's backoff (``CheckConfig.task_backoff_ms``). A job Shunya never
finishes must end in a dead letter once its poll budget is spent, never dropped quietly (``_stuck_jobs``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import DEAD_LETTER_RETRY
from stormproof.harness.invariants.checkers._requests_behind import requests_behind_tasks
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Row, Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._backoff import check_backoff
from ._manual_retry import check_dead_letter_lists, check_manual_retries
from ._stuck_jobs import check_stuck_jobs
from ._tenant_retry_budget import check_tenant_retry_budget, refused_tasks
from ._unqueued_submissions import check_unqueued_submissions

__all__ = ["NAME", "TRANSIENT", "check_dead_letter_accounting"]

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
    dead_lettered: list[Row] = []
    for record in records:
        state = str(record.get("state"))
        states[state] += 1
        if state in IN_FLIGHT:
            in_flight.append(record.get("task_id"))
        elif state == "dead_lettered":
            dead_lettered.append(record)
        elif state not in FINISHED:
            log.add(
                "dropped" if state == "dropped" else "unaccounted",
                f"task {record.get('name')} {record.get('task_id')} ended {state} after "
                f"{record.get('attempts')} attempts",
                requests_behind_tasks(history, snapshot, (record,)),
                badness=float(record.get("attempts") or 0),
                task_id=record.get("task_id"),
                task_name=record.get("name"),
                company_id=record.get("company_id"),
                state=state,
                # why its last try failed (an upstream's 503...): what a replay must make happen again
                **({"last_error": str(record["last_error"])} if record.get("last_error") else {}),
                attempts=record.get("attempts"),
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
                requests_behind_tasks(history, snapshot, (record,)),
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
    _retry_budget(history, records, snapshot, log)
    hand_retries = _gave_up_early(history, snapshot, log)
    stuck_jobs = check_stuck_jobs(log, history, snapshot)
    submissions = check_unqueued_submissions(log, history, snapshot)
    backoff = snapshot.config.task_backoff_ms
    def cite(rows: Iterable[Row]) -> tuple[int, ...]:  # the requests behind tasks, for stormproof reproduce
        return requests_behind_tasks(history, snapshot, rows)

    timing = None if backoff is None else check_backoff(log, records, backoff, cite)
    config = snapshot.config
    budget = {} if config.retry_budget_per_s is None else check_tenant_retry_budget(
        log, records, config.retry_budget_per_s, config.retry_budget_burst, config.rate_limit_tolerance, cite)
    letters = snapshot.dead_letters
    retries = 0
    lists = check_dead_letter_lists(log, history)
    if letters is None:
        if dead_lettered or history.pairs_of(DEAD_LETTER_RETRY):
            log.cannot("dead_letters not in snapshot")
    else:
        retries = check_manual_retries(log, history, letters, records)
        lettered = {letter.get("task_id") for letter in letters}
        for record in dead_lettered:
            task_id = record.get("task_id")
            if task_id not in lettered:
                log.add("dead-letter-missing", f"task {task_id} is dead_lettered but has no dead_letters row",
                        requests_behind_tasks(history, snapshot, (record,)), task_id=task_id)
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
        dead_letter_lists_judged=lists,
        hand_retries_judged=hand_retries,
        throttles_judged=_throttles(records, letters),
        **submissions,
        **budget,
        **({} if timing is None else {"retry_timing": timing, "retry_waits_judged": timing.get("waits_judged", 0),
                                      "backoff_retries_judged": timing.get("retries_judged", 0)}),
        failed_tasks_judged=_failed_tasks(records),
        stuck_jobs_judged=stuck_jobs,
    )


def _failed_tasks(records: tuple) -> int:
    """Tasks that failed at least once (a failure-driven retry in the ledger) or were dead-lettered for a transient
    failure: the tasks the retry and dead-letter rules (plan C1, C2) had something to judge of. A run whose tasks
    all succeeded at their first try put none of those promises at risk, however many calls it submitted; nor
    did a poll dead-lettered for its spent poll budget (no retry mends that)."""
    return sum(1 for record in records
               if str(record.get("state")) == "dead_lettered" and TRANSIENT.search(str(record.get("last_error") or ""))
               or _failed_once(record))


def _failed_once(record: Row) -> bool:
    """Whether the ledger shows a failure-driven retry of this task (a throttled wait is not a failure)."""
    return any(isinstance(event, dict) and event.get("event") == "retry" and event.get("failure") is not None
               for event in record.get("tries") or ())


def _throttles(records: tuple, letters: tuple | None) -> int:
    """How many tasks met a rate limit (theirs, the app's or Shunya's 429): a throttled retry in the ledger, or a
    dead letter whose error reads as one. What the throttle rows (plan C3) count as exercised: a run whose tasks
    were never throttled judged nothing of them, however many calls it submitted."""
    throttled = {str(record.get("task_id")) for record in records
                 if any(isinstance(event, dict) and event.get("throttled") for event in record.get("tries") or ())}
    throttled |= {str(letter.get("task_id")) for letter in letters or ()
                  if _THROTTLE.search(str(letter.get("error") or ""))}
    return len(throttled)


#: A dead letter's error that reads as a rate limit's refusal (the app's or the upstream's).
_THROTTLE = re.compile(r"HTTP 429|rate.?limit|too many requests", re.IGNORECASE)
#: A dead letter's error that reads as a transient failure of the upstream (a 5xx, a timeout, a connection that
#: failed) or a rate limit (the app's own, or the upstream's 429: the work waits for its allowance): what a retry
#: policy exists for. Other errors (a 4xx refusal, a poll budget spent, a bug) are not judged.
TRANSIENT = re.compile(r"HTTP 5\d\d|time[d ]?out|connect|unavailable|" + _THROTTLE.pattern, re.IGNORECASE)


def _gave_up_early(history: History, snapshot: Snapshot, log: ViolationLog) -> int:
    """A task that failed transiently is retried its budget's worth before it is dead-lettered (plan C1).

    A dead letter records how many times its task failed (``attempts``); one that failed fewer times than
    1 + ``task_max_retries``, for a transient failure (its error reads as a 5xx, a timeout, a failed
    connection or a rate limit; an upstream refusal, a spent poll budget or a bug is left out: no retry mends
    them), gave
    up early (``gave-up-early``): a retry count read as 0 passed shunya-outage while every failed job was
    dead-lettered on its first error (2026-12-03).

    Returns how many tasks queued again by hand, from a letter of a task that ran here, failed at least once:
    the retries whose budget this rule could judge (a retried task that never failed spends none of it).
    """
    retries = snapshot.config.task_max_retries
    letters, records = snapshot.table("dead_letters"), snapshot.table("task_records")
    if retries is None or letters is None or records is None:
        return 0
    # Only letters of tasks that ran in this app (their ledger row records tries): a letter written by hand
    # (the seed's, for the manual retries) says nothing of the retry policy.
    # Tries the ledger saw begin, per task: a letter's own count of failures is the app's word, and a task
    # queued again by hand that inherited its letter's count was dead-lettered at its first failure while its
    # letter claimed all of them (2026-12-03).
    began = {str(record.get("task_id")): sum(1 for event in record.get("tries") or ()
                                             if isinstance(event, dict) and event.get("event") == "start")
             for record in records}
    ran = {task for task, count in began.items() if count}
    # A letter whose retry the tenant's budget refused is judged by that budget's rule (_tenant_retry_budget).
    ran -= refused_tasks(records)
    failed = {str(record.get("task_id")) for record in records if _failed_once(record)}
    failed |= {str(letter.get("task_id")) for letter in letters}
    exposed = ran & failed
    hand_retried = sum(1 for letter in letters if str(letter.get("task_id")) in ran
                       and str(letter.get("retried_task_id")) in exposed)
    by_task = {str(record.get("task_id")): record for record in records}
    for letter in letters:
        task = str(letter.get("task_id"))
        failures = min(int(letter.get("attempts") or 0), began.get(task, 0))
        error = str(letter.get("error") or "")
        if task not in ran or failures >= 1 + retries or not TRANSIENT.search(error):
            continue
        log.add("gave-up-early", f"task {letter.get('task_name')} {letter.get('task_id')} was dead-lettered after "
                f"{failures} failure(s) ({error[:120]}); a transient failure is retried {retries} times first",
                requests_behind_tasks(history, snapshot, (by_task[task],)), badness=float(1 + retries - failures),
                task_id=letter.get("task_id"),
                task_name=letter.get("task_name"), company_id=letter.get("company_id"), failures=failures,
                retries=retries, error=error[:200])
    return hand_retried


def _retry_budget(history: History, records: tuple, snapshot: Snapshot, log: ViolationLog) -> None:
    """Every task tried at most its budget's number of times (a killed worker's re-run excused as unknown)."""
    budget = snapshot.config.task_try_budget
    over = [record for record in records
            if str(record.get("name")) in budget and int(record.get("attempts") or 0) > budget[str(record.get("name"))]]
    if not over:
        return
    kills = [op.index for op in history.faults() if "kill" in str(op.args.get("fault", ""))]
    if kills:
        log.cannot(f"{len(over)} tasks were tried more often than their budget allows, in a run that killed "
                   "processes (a worker that died mid-try has its task run again)")
        return
    for record in over:
        name, attempts = str(record.get("name")), int(record.get("attempts") or 0)
        log.add("over-budget", f"task {name} {record.get('task_id')} was tried {attempts} times, its budget allows "
                f"{budget[name]}; it ended {record.get('state')}", requests_behind_tasks(history, snapshot, (record,)),
                badness=float(attempts - budget[name]),
                task_id=record.get("task_id"), task_name=name, company_id=record.get("company_id"),
                attempts=attempts, budget=budget[name], state=record.get("state"),
                **({"last_error": str(record["last_error"])} if record.get("last_error") else {}))
