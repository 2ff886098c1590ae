"""deletion-audited: every executed deletion is audited, and what it deleted is gone (plan F2).

Judged on the history's acknowledged confirmations and the final state:

- every ``ok`` ``deletion.confirm`` has its ``deletion_audit`` row (the audit
  id is the deletion id): a deletion without its audit row is the bug the
  one-transaction rule exists to prevent, and audit rows are never deleted
  (by retention or anything else), so the row must still be there;
- for every audited deletion of scope ``appointment``, nothing of the
  appointment remains: no appointment row, no consent, assignment,
  recording session or call naming it, and none of the calls the history
  saw acknowledged for it (a call that survived unlinked, its
  ``appointment_id`` set to NULL, is still the person's data);
- nothing is deleted without its confirmation token (F2's two steps): a
  confirmation sent with a wrong token (``wrong_token``) answered 2xx, an
  audit row of a deletion that no confirmation with its token may have
  executed, and an appointment gone from the final state whose acknowledged
  deletion request was never confirmed with its token (and that nothing
  else may have deleted: another request's confirmation, an appointment
  DELETE probe) are each a deletion done without consent. The load's
  ``DELETE /appointments/{id}`` is a deletion request too (``args.route``
  ``delete``): plan F2 wants every way of deleting confirmed and audited,
  so a route that deleted at once (204) is ``deleted-unconfirmed``;
- a deletion runs once: a confirmation sent after one with the token was
  answered 2xx (a double click, a retry) gets a refusal (409
  ``deletion-not-pending``) or the first answer again, status and body; a
  2xx with another body ran the deletion again and rewrote its audit
  (``deletion-executed-again``), a 5xx with no fault active leaves a client
  that retries unable to learn that it is done (``reconfirm-failed``); two
  confirmations sent at once (a double click) are judged alike, whichever
  the app ran: the other gets a refusal or the same answer, and a 5xx with no
  fault active is ``concurrent-confirm-failed`` (the second found the request
  still pending: it was read without a lock);
- a confirmed deletion runs: the first confirmation of a request sent with its token well
  before the request expired (``args.past_expiry_s`` at most ``-_IN_TIME_S``), with no other
  confirmation of it sent before its answer and nothing else that may have taken its target
  first (another confirmed request of the same appointment, an appointment DELETE, a confirmed
  deletion of the tenant's company), answered a refusal (a 4xx but 429) is ``confirm-refused``:
  the person asked twice and nothing was erased (found by a mutation sweep, 2026-12-05: the
  pending check inverted, every confirmation answered 409 "already executed", passed);
- an executed appointment deletion's audit counts at least what it erased:
  the appointment, and each consent and call the history saw acknowledged
  for it before the confirmation (``audit-counts-short``: the record of a
  deletion that says it erased nothing is no record);
- only a confirmation sent before its request expired deletes: one the load
  sent once the request's ``expires_at`` was certainly past (``args.expired``,
  from the server's own clock: see ``load.deadlines``) answered 2xx, or an
  audit row of a request confirmed with its token only late, is
  ``confirmed-expired``; an appointment gone whose request was confirmed only
  late is ``deleted-unconfirmed``;
- audit rows known to exist before the run (the seed's old ones, named by a
  ``retention.run`` invoke's ``args.rows`` with kind ``audit``) are still
  there: retention, or anything else, deleting one is ``audit-row-deleted``;
- an executed company deletion (a confirmation of scope ``company`` answered
  2xx) takes all of the company's data but its managers (docs/API.md,
  "Deletion"), its outbox rows and idempotency keys too (counted per company:
  ``Snapshot.rows_by_company``), and nothing of another company. The load deletes a company
  nothing else of the run writes to (the seed's disposable one), so its final
  rows are judged outright: any row of it left in a table the deletion empties
  is ``company-not-deleted``, one of its managers (``args.managers``) gone is
  ``company-managers-deleted``, a user of another company (``args.kept_users``)
  gone is ``other-company-users-deleted``, and audits of it counting more rows
  of a table than the company had (``args.rows``, counted by the seed, its only
  writer) is ``company-deletion-overreach``: what the deletion counted beyond
  the company was some other company's;
- deletion requests are kept (docs/API.md, "Deletion"): a company deletion takes
  its own tenant's pending requests and nothing else, so every acknowledged
  request is in the final state (where the snapshot read ``deletion_requests``),
  but the pending ones of a company whose deletion may have run; one confirmed
  2xx (executed) stays whatever happened to its company, as ``executed``. A
  request gone is ``deletion-request-lost``, an executed one left pending is
  ``executed-request-pending``. Found by a source-mutation sweep (session 37):
  the company condition of that cleanup dropped (every tenant's pending requests
  erased by one company's deletion) and the cleanup taking the executing request
  itself both passed every rule, as no rule read the requests table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import (APPOINTMENT_DELETE, CALL_SUBMIT, CONSENT_GRANT, DELETION_CONFIRM,
                                                   DELETION_REQUEST, RETENTION_RUN)
from stormproof.harness.invariants.checkers._common import deleters, possible_span
from stormproof.harness.invariants.checkers._probes import FaultWindows, answer_class
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Row, Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_deletion_audited"]

NAME = "deletion-audited"

#: Tables whose rows name an appointment by ``appointment_id`` and go with it.
_CHILDREN = ("consents", "appointment_assignments", "recording_sessions", "calls")
#: Tables a company deletion empties of the company's rows (of ``users``: all but the managers).
_COMPANY_TABLES = ("appointments", "appointment_assignments", "consents", "recording_sessions", "calls",
                   "shunya_jobs", "call_analyses", "task_records", "dead_letters", "retention_policies", "users")


@checker(NAME, "safety")
def check_deletion_audited(history: History, snapshot: Snapshot) -> Verdict:
    """Each acknowledged deletion has its audit row; an audited appointment deletion left nothing behind."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    audit = snapshot.table("deletion_audit")
    if audit is None:
        log.cannot("deletion_audit not captured: deletions not checked")
        return log.verdict(confirmed=0, audited=0)
    audited = {str(row.get("id")): row for row in audit}
    confirmed = 0
    for invoke, completion in history.acknowledged_of(DELETION_CONFIRM):
        assert completion is not None
        if invoke.args.get("wrong_token"):
            continue  # judged by _unconfirmed_deletions
        confirmed += 1
        deletion = completion.result.get("id") or invoke.args.get("deletion_id")
        if str(deletion) not in audited:
            log.add("missing-audit",
                    f"deletion {deletion} was confirmed (answered {completion.status}) but has no audit row",
                    (invoke.index, completion.index), deletion_id=deletion, tenant=invoke.tenant)
    leftovers = 0
    calls_for: dict[str, set[str]] = {}
    for invoke, completion in history.acknowledged_of(CALL_SUBMIT):
        assert completion is not None
        appointment, call = invoke.args.get("appointment_id"), completion.result.get("id")
        if appointment is not None and call is not None:
            calls_for.setdefault(str(appointment), set()).add(str(call))
    call_rows = snapshot.table("calls")
    surviving_calls = {str(row.get("id")) for row in call_rows or ()}
    appointments = snapshot.table("appointments")
    for row in audit:
        if row.get("scope") != "appointment":
            continue
        target, company = row.get("target_id"), row.get("company_id")
        remaining = []
        if appointments is not None and any(a.get("id") == target for a in appointments):
            remaining.append("appointments")
        for table in _CHILDREN:
            rows = snapshot.table(table)
            if rows is not None and any(r.get("appointment_id") == target for r in rows):
                remaining.append(table)
        if "calls" not in remaining and calls_for.get(str(target), set()) & surviving_calls:
            remaining.append("calls")
        if remaining:
            leftovers += 1
            log.add("not-deleted",
                    f"appointment {target} was deleted (audit {row.get('id')}) but rows of it remain in "
                    f"{', '.join(remaining)}",
                    deletion_id=row.get("id"), appointment_id=target, company_id=company, tables=tuple(remaining))
    short = _short_counts(log, history, audited)
    unconfirmed, pending = _unconfirmed_deletions(log, history, snapshot, audited)
    reconfirmed, confirmed_together = _confirmed_again(log, history)
    first_confirms = _refused_confirmations(log, history)
    companies = _company_deletions(log, history, snapshot, audit)
    kept, at_risk, company_requests = _requests_kept(log, history, snapshot)
    known = _known_audit_rows(history)
    for audit_id, ops in known.items():
        if audit_id not in audited:
            log.add("audit-row-deleted", f"deletion audit row {audit_id}, there before the run, is gone: audit rows "
                    "are never deleted", ops, deletion_id=audit_id)
    return log.verdict(confirmed=confirmed, audited=len(audit), incomplete=leftovers,
                       deleted_unconfirmed=unconfirmed, left_pending=pending, known_audit_rows=len(known),
                       confirmed_again=reconfirmed, confirmed_together=confirmed_together, counts_short=short,
                       first_confirms_judged=first_confirms,
                       companies_deleted=companies, deletion_requests_kept_judged=kept,
                       deletion_requests_at_risk=at_risk, company_requests_judged=company_requests,
                       # the outbox and the idempotency keys judged too only where the snapshot counted them
                       # (an app without an outbox table has nothing there to leave behind)
                       company_pending_work_judged=companies if snapshot.rows_by_company else 0)


def _requests_kept(log: ViolationLog, history: History, snapshot: Snapshot) -> tuple[int, int, int]:
    """Every acknowledged deletion request is still there, an executed one as ``executed`` (see the module
    docstring). Returns the requests judged, those of them at risk (another tenant's, acknowledged before a
    company deletion may have run) and the executed company deletions' own requests judged."""
    rows = snapshot.table("deletion_requests")
    if rows is None:
        return 0, 0, 0  # not captured (an app that keeps its requests elsewhere): nothing claimed
    present = {str(row.get("id")): row for row in rows}
    swept: dict[str, int] = {}  # company -> when its first confirmation that may have run was sent (ns)
    executed: set[str] = set()
    for pair in history.pairs_of(DELETION_CONFIRM):
        invoke, completion = pair
        if invoke.args.get("wrong_token"):
            continue
        if completion is not None and completion.type == "ok":
            executed.add(str(completion.result.get("id") or invoke.args.get("deletion_id")))
        if invoke.args.get("scope") == "company" and possible_span(pair) is not None:
            company = str(invoke.args.get("target_id"))
            swept[company] = min(swept.get(company, invoke.time_ns), invoke.time_ns)
    first_sweep = min(swept.values(), default=None)
    judged = at_risk = own = 0
    for invoke, completion in history.acknowledged_of(DELETION_REQUEST):
        assert completion is not None
        deletion = completion.result.get("id")
        if deletion is None:
            continue  # a route that deleted at once (judged as deleted-unconfirmed)
        deletion, company = str(deletion), str(invoke.tenant)
        done = deletion in executed
        if not done and company in swept:
            continue  # a pending request of a company whose deletion may have run: it goes with the company
        judged += 1
        if done and invoke.args.get("scope") == "company":
            own += 1
        elif first_sweep is not None and company not in swept and completion.time_ns < first_sweep:
            at_risk += 1
        ops = (invoke.index, completion.index)
        row = present.get(deletion)
        if row is None:
            log.add("deletion-request-lost",
                    f"deletion request {deletion} of {company} (answered {completion.status}) is gone from the final "
                    "state: " + ("an executed request stays beside its audit" if done else
                                 "only its own company's deletion takes a pending request"),
                    ops, deletion_id=deletion, tenant=company, executed=done)
        elif done and row.get("status") == "pending":
            log.add("executed-request-pending",
                    f"deletion request {deletion} of {company} was confirmed (answered 2xx) but is still pending: "
                    "its token can run it again", ops, deletion_id=deletion, tenant=company)
    return judged, at_risk, own


def _company_deletions(log: ViolationLog, history: History, snapshot: Snapshot, audit: Iterable[Row]) -> int:
    """Judge each company an acknowledged confirmation deleted (see the module docstring); how many."""
    done: dict[str, tuple[Op, Op]] = {}
    for invoke, completion in history.acknowledged_of(DELETION_CONFIRM):
        assert completion is not None
        if invoke.args.get("scope") == "company" and not invoke.args.get("wrong_token"):
            done.setdefault(str(invoke.args.get("target_id")), (invoke, completion))
    users = snapshot.table("users")
    present = None if users is None else {str(row.get("id")) for row in users}
    for company, (invoke, completion) in done.items():
        ops = (invoke.index, completion.index)
        left: dict[str, int] = {}
        for table in _COMPANY_TABLES:
            rows = snapshot.table(table)
            n = sum(1 for row in rows or () if row.get("company_id") == company
                    and not (table == "users" and row.get("role") == "manager"))
            if n:
                left[table] = n
        for table, counts in (snapshot.rows_by_company or {}).items():
            if counts.get(company):
                left[table] = counts[company]
        if left:
            log.add("company-not-deleted", f"company {company} was deleted (answered {completion.status}), yet "
                    + ", ".join(f"{n} row(s) of {table}" for table, n in left.items()) + " of it remain", ops,
                    company_id=company, left=left)
        if present is not None:
            gone = [user for user in invoke.args.get("managers") or () if str(user) not in present]
            if gone:
                log.add("company-managers-deleted", f"company {company}'s deletion took its managers {gone}: they "
                        "stay, to read the audit that names them", ops, company_id=company, users=gone)
            others = [user for user in invoke.args.get("kept_users") or () if str(user) not in present]
            if others:
                log.add("other-company-users-deleted", f"company {company}'s deletion ran, and {len(others)} "
                        f"user(s) of other companies are gone ({', '.join(others[:5])})", ops, company_id=company,
                        users=others)
        had = invoke.args.get("rows")
        if isinstance(had, Mapping):
            counted: dict[str, int] = defaultdict(int)
            for row in audit:
                if row.get("scope") == "company" and str(row.get("target_id")) == company \
                        and isinstance(row.get("counts"), Mapping):
                    for table, n in row["counts"].items():
                        if isinstance(n, int):
                            counted[str(table)] += n
            over = {table: (counted[table], had[table]) for table in had
                    if isinstance(had[table], int) and counted.get(table, 0) > had[table]}
            if over:
                log.add("company-deletion-overreach", f"company {company}'s deletion audit counts more rows than "
                        "the company had: " + ", ".join(f"{table} {n} of {m}" for table, (n, m) in over.items())
                        + " (the rest were another company's)", ops, company_id=company,
                        over={table: list(pair) for table, pair in over.items()})
    return len(done)


def _confirmed_again(log: ViolationLog, history: History) -> tuple[int, int]:
    """Judge every other confirmation of a deletion that one confirmation executed (answered 2xx): those
    sent after that answer came back, and those in flight beside it (a double click); count each kind.

    Two confirmations in flight together are serialised by the app in an order the history cannot
    see, so either may be the one that ran: the other must get a refusal or the same answer, never a
    second run (another 2xx body) and never a 5xx (``concurrent-confirm-failed``: the loser of the race
    found the request still pending and failed running it again). Any refusal is accepted (the
    reference app answers 409 deletion-not-pending; 404 or 410 keep the promise too).
    """
    faults = FaultWindows(history)
    confirms: dict[str, list[tuple[Op, Op]]] = defaultdict(list)
    for invoke, completion in history.pairs_of(DELETION_CONFIRM):
        if completion is not None and not invoke.args.get("wrong_token"):
            confirms[str(invoke.args.get("deletion_id"))].append((invoke, completion))
    judged = together = 0
    for deletion, pairs in confirms.items():
        done = [pair for pair in pairs if pair[1].type == "ok"]
        if not done:
            continue
        first_invoke, first = min(done, key=lambda pair: pair[1].time_ns)
        for invoke, completion in pairs:
            if invoke is first_invoke:
                continue
            beside = invoke.time_ns <= first.time_ns
            if beside and completion.time_ns <= first_invoke.time_ns:
                continue  # over before the executing one was sent: not about running once
            if beside:
                together += 1
            else:
                judged += 1
            kind = answer_class(invoke, completion, faults)
            ops = (first_invoke.index, first.index, invoke.index, completion.index)
            when = "at the same time as the confirmation that ran it" if beside else "again after its " \
                f"confirmation answered {first.status}"
            if kind == "2xx" and (completion.status != first.status
                                  or completion.result.get("body_sha256") != first.result.get("body_sha256")):
                log.add("deletion-executed-again",
                        f"deletion {deletion} was confirmed {when}, and the two answered 2xx with different "
                        f"bodies ({first.status} and {completion.status}): it ran twice (a deletion runs once; "
                        "another confirmation gets 409 or the first answer)", ops, deletion_id=deletion,
                        tenant=invoke.tenant)
            elif kind == "5xx" and beside:
                log.add("concurrent-confirm-failed",
                        f"deletion {deletion} was confirmed twice at once (a double click): one ran it (answered "
                        f"{first.status}), the other answered {completion.status} with no fault active; the "
                        "second must wait for the first and get 409 deletion-not-pending or the same answer, "
                        "never an error (it found the request still pending and ran it again)", ops,
                        deletion_id=deletion, tenant=invoke.tenant, status=completion.status)
            elif kind == "5xx":
                log.add("reconfirm-failed",
                        f"deletion {deletion}, executed (answered {first.status}), was confirmed again and answered "
                        f"{completion.status} with no fault active: a client retrying its confirmation cannot "
                        "learn that it is done", ops, deletion_id=deletion, tenant=invoke.tenant,
                        status=completion.status)
    return judged, together


#: How long before its request's life is certainly over (``args.past_expiry_s``) a confirmation must be sent to
#: be certainly in time: that bound is one second over the life, ``Date`` is cut to the second, and a second more.
_IN_TIME_S = 3.0


def _refused_confirmations(log: ViolationLog, history: History) -> int:
    """The first in-time confirmation with its token of each request, refused with nothing before it: flagged.

    Returns how many such first confirmations were judged. A refusal is fine when something may have
    made the request moot first: another confirmation of it (a double click: the other may have run it),
    another confirmed request or a DELETE of the same appointment, a confirmed deletion of the company
    (which takes the tenant's other pending requests with it). 5xx answers are judged by
    server-errors-explained; a 429 is the limiter's.
    """
    requests = {str(completion.result.get("id")): (invoke.tenant, invoke.args.get("scope"), invoke.args.get("target_id"))
                for invoke, completion in history.acknowledged_of(DELETION_REQUEST)}
    confirms = [pair for pair in history.pairs_of(DELETION_CONFIRM) if not pair[0].args.get("wrong_token")]
    by_deletion: dict[str, list[tuple[Op, Op | None]]] = defaultdict(list)
    for pair in confirms:
        by_deletion[str(pair[0].args.get("deletion_id"))].append(pair)
    # Moments something else may have taken a target: (tenant, appointment) or (tenant, "company").
    takers: dict[tuple[object, object], list[tuple[str, int]]] = defaultdict(list)
    for invoke, _ in confirms:
        tenant, scope, target = requests.get(str(invoke.args.get("deletion_id")), (None, None, None))
        if scope is not None:
            takers[(tenant, "company" if scope == "company" else target)].append(
                (str(invoke.args.get("deletion_id")), invoke.time_ns))
    for invoke, _ in history.pairs_of(APPOINTMENT_DELETE):
        takers[(invoke.tenant, invoke.args.get("appointment_id"))].append(("", invoke.time_ns))
    judged = 0
    for deletion, pairs in by_deletion.items():
        if deletion not in requests:
            continue
        invoke, completion = min(pairs, key=lambda pair: pair[0].time_ns)
        past = invoke.args.get("past_expiry_s")
        if completion is None or completion.status is None or not isinstance(past, (int, float)) or past > -_IN_TIME_S:
            continue
        answered = completion.time_ns
        if any(other is not invoke and other.time_ns <= answered for other, _ in pairs):
            continue  # another confirmation of it may have run it first
        tenant, scope, target = requests[deletion]
        moot = [when for key in ((tenant, target), (tenant, "company")) for who, when in takers.get(key, ())
                if who != deletion and when <= answered]
        if moot:
            continue
        judged += 1
        if 400 <= completion.status < 500 and completion.status != 429:
            problem = completion.result.get("problem")
            log.add("confirm-refused",
                    f"deletion {deletion} ({scope} {target}) was confirmed with its token {-past:g} s before it "
                    f"could have expired, first and alone, and answered {completion.status}"
                    + (f" ({problem})" if problem else "") + ": a confirmed deletion runs (plan F2)",
                    (invoke.index, completion.index), deletion_id=deletion, tenant=invoke.tenant,
                    status=completion.status)
    return judged


#: What an appointment's audit row must count at least: the appointment itself, and each of its consents and
#: calls the history saw acknowledged before the confirmation was sent (counts keyed by table).
_COUNTED = (("consents", CONSENT_GRANT), ("calls", CALL_SUBMIT))


def _short_counts(log: ViolationLog, history: History, audited: Mapping[str, Mapping[str, object]]) -> int:
    """Audit rows of appointment deletions whose counts leave out what the deletion took: ``audit-counts-short``.

    The audit is the record of what was erased (plan F2: "audit trail for all deletions"); an audit
    that wrote zeros, or counted before the cascade, passed lifecycle-under-load while its rows existed
    (2026-12-03). Each executed confirmation is judged by the rows its target is known to have had.
    """
    targets = {str(completion.result.get("id")): str(invoke.args.get("target_id"))
               for invoke, completion in history.acknowledged_of(DELETION_REQUEST)
               if invoke.args.get("scope") == "appointment" and completion.result.get("id") is not None}
    made: dict[tuple[str, str], list[int]] = defaultdict(list)  # (table, appointment) -> acknowledgement times
    for table, name in _COUNTED:
        for invoke, completion in history.acknowledged_of(name):
            assert completion is not None
            if invoke.args.get("appointment_id") is not None:
                made[(table, str(invoke.args["appointment_id"]))].append(completion.time_ns)
    found = 0
    judged: set[str] = set()
    for invoke, completion in history.acknowledged_of(DELETION_CONFIRM):
        assert completion is not None
        deletion = str(invoke.args.get("deletion_id"))
        target, row = targets.get(deletion), audited.get(deletion)
        if invoke.args.get("wrong_token") or target is None or row is None or deletion in judged:
            continue
        judged.add(deletion)
        counts = row.get("counts") if isinstance(row.get("counts"), Mapping) else {}
        expected = {"appointments": 1, **{table: sum(1 for at in made[(table, target)] if at < invoke.time_ns)
                                          for table, _ in _COUNTED}}
        short = {table: (counts.get(table, 0), want) for table, want in expected.items()  # type: ignore[union-attr]
                 if want and not (isinstance(counts.get(table), int) and counts[table] >= want)}  # type: ignore[index]
        if short:
            found += 1
            said = ", ".join(f"{table} {got} (at least {want})" for table, (got, want) in short.items())
            log.add("audit-counts-short",
                    f"deletion {deletion} of appointment {target} was audited with counts {said}: the audit must "
                    "record what the deletion erased", (invoke.index, completion.index), deletion_id=deletion,
                    appointment_id=target, tenant=invoke.tenant)
    return found


def _known_audit_rows(history: History) -> dict[str, tuple[int, ...]]:
    """Audit rows that existed before the run, as retention runs name them -> the first invoke naming each."""
    known: dict[str, tuple[int, ...]] = {}
    for invoke, _ in history.pairs_of(RETENTION_RUN):
        for row in invoke.args.get("rows") or ():
            if isinstance(row, Mapping) and row.get("kind") == "audit":
                known.setdefault(str(row.get("id")), (invoke.index,))
    return known


def _expired_confirmation(log: ViolationLog, invoke: Op, completion: Op | None, executed: bool) -> int:
    """A confirmation sent after its request's life was certainly over (``args.expired``): it must delete nothing.

    Answered 2xx, or its request executed (an audit row) with no confirmation sent in time: ``confirmed-expired``.
    An expiry that is not enforced leaves a leaked token (a mail, a log line) able to erase data for ever
    (found 2026-12-03: no confirmation was ever sent late, so an app that ignored ``expires_at`` passed).
    """
    deletion, past = invoke.args.get("deletion_id"), invoke.args.get("past_expiry_s")
    ops = (invoke.index,) if completion is None else (invoke.index, completion.index)
    if completion is not None and completion.type == "ok":
        log.add("confirmed-expired", f"deletion {deletion} was confirmed {past} s after its request had expired "
                f"and answered {completion.status}: only a confirmation before expires_at may delete", ops,
                deletion_id=deletion, tenant=invoke.tenant, past_expiry_s=past)
        return 1
    if executed:
        log.add("confirmed-expired", f"deletion {deletion} was executed (it has an audit row), but its only "
                f"confirmations with the token were sent after it expired ({past} s after)", ops,
                deletion_id=deletion, tenant=invoke.tenant, past_expiry_s=past)
        return 1
    return 0


def _unconfirmed_deletions(log: ViolationLog, history: History, snapshot: Snapshot,
                           audited: dict[str, object]) -> tuple[int, int]:
    """Deletions done without their token; returns (violations, requests never confirmed with their token)."""
    found = 0
    confirms = history.pairs_of(DELETION_CONFIRM)
    # Requests a confirmation with their token, sent before the request expired, may have executed
    # (answered ok, or no answer).
    confirmable = {str(pair[0].args.get("deletion_id")) for pair in confirms
                   if not pair[0].args.get("wrong_token") and not pair[0].args.get("expired")
                   and possible_span(pair) is not None}
    for invoke, completion in confirms:
        deletion = str(invoke.args.get("deletion_id"))
        if invoke.args.get("expired") and not invoke.args.get("wrong_token"):
            found += _expired_confirmation(log, invoke, completion, deletion in audited and deletion not in confirmable)
            continue
        if not invoke.args.get("wrong_token"):
            continue
        if completion is not None and completion.type == "ok":
            found += 1
            log.add("wrong-token-accepted",
                    f"deletion {deletion} was confirmed with a wrong token and answered {completion.status}",
                    (invoke.index, completion.index), deletion_id=deletion, tenant=invoke.tenant)
        elif deletion in audited and deletion not in confirmable:
            found += 1
            log.add("executed-without-token",
                    f"deletion {deletion} was executed (it has an audit row) but no confirmation with its "
                    "token may have executed it",
                    (invoke.index,) if completion is None else (invoke.index, completion.index),
                    deletion_id=deletion, tenant=invoke.tenant)
    appointments = snapshot.table("appointments")
    if appointments is None:
        return found, 0
    remaining = {str(row.get("id")) for row in appointments}
    requests = [(invoke, completion) for invoke, completion in history.acknowledged_of(DELETION_REQUEST)
                if invoke.args.get("scope") == "appointment"]
    # Targets some executed (or possibly executed) request or an appointment DELETE may have removed.
    excused = {str(invoke.args.get("target_id")) for invoke, completion in requests
               if str(completion.result.get("id")) in confirmable | set(audited)}  # type: ignore[union-attr]
    excused |= {str(appointment) for (_, appointment) in deleters(history)}
    pending = 0
    for invoke, completion in requests:
        assert completion is not None
        deletion, target = str(completion.result.get("id")), str(invoke.args.get("target_id"))
        if deletion in confirmable:
            continue
        pending += 1
        if target not in remaining and target not in excused:
            found += 1
            # A route that deleted at once answers no request (a 204): say what it answered instead.
            if completion.result.get("id") is not None:
                why = f"its deletion {deletion} was never confirmed with its token"
            else:
                asked = "DELETE /appointments/{id}" if invoke.args.get("route") == "delete" else "its deletion request"
                why = f"{asked} answered {completion.status} with no request to confirm: deleted unconfirmed"
            log.add("deleted-unconfirmed", f"appointment {target} is gone, but {why}",
                    (invoke.index, completion.index), deletion_id=deletion, appointment_id=target,
                    tenant=invoke.tenant)
    return found, pending

