"""reads-current (every run): a read answers the state that acknowledged writes left, never an older one.

The brief's invariants judge the final state and the writes' answers; a read
answers clients too (the API and its read model are the contract), and a
client that was told "stopped" or "assigned to Dana" acts on what it reads
next. A read served from a stale copy (a response cache not invalidated by
the write, a lagging replica) passes every final-state check. Found by an
outside bug: session and appointment reads cached for a few seconds passed
every scenario.

Judged, for reads sent after a write was answered (the write certainly took
effect before the read began):

- a session read answering it active (pending or recording) after a stop of it
  was acknowledged: ``stale-session`` (sessions never restart);
- a session read answering 404 after a start that created it was
  acknowledged, with no deletion of its appointment (or retention, or a company
  deletion of its tenant) that may have acted: ``session-read-lost``;
- an appointment read whose ``assigned_rep_id`` is not what the last
  acknowledged assign or unassign of it left, where that write is unambiguous:
  every other write of the appointment that may have acted (assigns and
  unassigns, the load's or a probe's) ended before it began or began after
  the read was answered. ``stale-assignment``. A keyed write acted as early as its
  key was first sent (a retry or replay under the key acted then);
- a call read answering ``analyses: 0`` after a signed delivery of the call's
  job was answered ``applied``, or after another read of the call answered an
  analysis: ``stale-call`` (an analysis is removed only with its call, whose
  read is then a 404). Found by an outside bug: the read
  cache of appointments and sessions on ``GET /calls/{id}``, the route clients
  poll for the result, passed every scenario (no rule read a call's answer).

A read by id answers that row: a 200 naming another id, or a session read
naming another appointment than its start did, is ``read-other-row`` (a
cache or a query keyed wrong; tenant-isolation judges the rows of other
tenants, this the reader's own). Found by a sweep that rewrote fields of 2xx
answers: a read answering another row of the same tenant passed every rule.

A list read under a row's path (an appointment's assignments or consents)
lists that row's rows only, and a list filtered by a value (``?status=dead``)
lists rows of that value only: a listed row whose field says otherwise is
``list-other-rows``. The load's own reads and filtered reads (``probe.filter``)
note the values their rows carry in those fields (``fields_seen``, from
``args.list_fields``). Found by a sweep that dropped criteria of queries: an
appointment's consents listed without the appointment's condition, and the
sessions list's status filter dropped, passed every scenario.

Reads answered while a fault was in place are judged like the others: a
fault may refuse or delay a read, not make it answer an old state.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import (APPOINTMENT_READ, CALL_READ, DELETION_CONFIRM, PROBE_FILTER,
                                                   RETENTION_RUN, SESSION_READ, STARTS, STOPS, WEBHOOK_DELIVER)
from stormproof.harness.invariants.checkers._assign_timeline import AMBIGUOUS, AssignTimeline
from stormproof.harness.invariants.checkers._common import deleters
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.timeline import INF, NO_UNDOERS
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_reads_current"]

NAME = "reads-current"

_ACTIVE = frozenset(("pending", "recording", "active"))


@checker(NAME, "safety")
def check_reads_current(history: History, snapshot: Snapshot) -> Verdict:
    """Session and appointment reads reflect the writes acknowledged before they were sent."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    session_reads = _judge_session_reads(log, history)
    appointment_reads, ambiguous = _judge_appointment_reads(log, history)
    call_reads = _judge_call_reads(log, history)
    identities = _judge_identity(log, history)
    lists = _judge_list_rows(log, history)
    return log.verdict(session_reads_judged=session_reads, appointment_reads_judged=appointment_reads,
                       appointment_reads_ambiguous=ambiguous, call_reads_judged=call_reads,
                       read_identities_judged=identities, list_reads_judged=lists)


def _judge_list_rows(log: ViolationLog, history: History) -> int:
    """List reads that noted their rows' fields (``fields_seen``) list only rows of the row under whose path they
    were read (an own read's path ids) or of the value they were filtered by. Returns the lists judged."""
    judged = 0
    for invoke, completion in history.pairs_of(PROBE_FILTER):
        if completion is None or completion.status != 200 or "fields_seen" not in completion.result:
            continue
        args = invoke.args
        fields = args.get("list_fields") or ()
        if args.get("query_field") is not None:
            wanted = {str(args["query_field"]): str(args.get("value"))}
        else:
            wanted = {str(name): str(args.get(name)) for name in fields if args.get(name) is not None}
        if not wanted:
            continue
        judged += 1
        other = sorted(seen for seen in completion.result["fields_seen"]
                       if (name := seen.split("=", 1)[0]) in wanted and seen != f"{name}={wanted[name]}")
        if other:
            asked = ", ".join(f"{k}={v}" for k, v in wanted.items())
            log.add("list-other-rows", f"{args.get('route')} read for {asked} listed rows of {', '.join(other[:5])}",
                    (invoke.index, completion.index),
                    route=args.get("route"), wanted=wanted, listed=tuple(other[:20]))
    return judged


#: The reads by id, and the arg naming the row asked for.
_READ_IDS = ((SESSION_READ, "session_id"), (APPOINTMENT_READ, "appointment_id"), (CALL_READ, "call_id"))


def _judge_identity(log: ViolationLog, history: History) -> int:
    """200 reads by id name the row asked for (and a session read its start's appointment). Returns the
    reads judged; an answer that names no id is not judged."""
    appointment_of = {completion.result.get("id"): invoke.args.get("appointment_id")
                      for invoke, completion in history.acknowledged_of(*STARTS)}
    judged = 0
    for f, key in _READ_IDS:
        for invoke, completion in history.pairs_of(f):
            if completion is None or completion.status != 200:
                continue
            asked, named = invoke.args.get(key), completion.result.get("id")
            if asked is None or named is None:
                continue
            judged += 1
            other = f"{key[:-3]} {named}" if str(named) != str(asked) else None
            if other is None and f == SESSION_READ:
                started, read = appointment_of.get(asked), completion.result.get("appointment_id")
                if started is not None and read is not None and str(read) != str(started):
                    other = f"a session of appointment {read} (it was started for {started})"
            if other is not None:
                log.add("read-other-row", f"a read of {key[:-3]} {asked} answered {other}",
                        (invoke.index, completion.index), f=f, asked=str(asked), answered=str(named))
    return judged


def _judge_session_reads(log: ViolationLog, history: History) -> int:
    stopped: dict[object, tuple[float, int]] = {}  # session -> (earliest acknowledged stop's answer, its index)
    for invoke, completion in history.acknowledged_of(*STOPS):
        assert completion is not None
        session = invoke.args.get("session_id")
        if session is not None and completion.time_ns < stopped.get(session, (INF, 0))[0]:
            stopped[session] = (completion.time_ns, completion.index)
    started: dict[object, tuple[float, int, tuple[object, object]]] = {}  # session -> (answered, index, appointment)
    for invoke, completion in history.acknowledged_of(*STARTS):
        assert completion is not None
        session = completion.result.get("id")
        if session is not None and not completion.result.get("replayed") \
                and completion.time_ns < started.get(session, (INF, 0, None))[0]:
            started[session] = (completion.time_ns, completion.index,
                                (invoke.tenant, invoke.args.get("appointment_id")))
    deletes = deleters(history)
    sweeping = {invoke.tenant for invoke, _ in history.pairs_of(RETENTION_RUN, DELETION_CONFIRM)}
    judged = 0
    for invoke, completion in history.pairs_of(SESSION_READ):
        if completion is None:
            continue
        session = invoke.args.get("session_id")
        if completion.status == 200:
            stop = stopped.get(session)
            if stop is None or stop[0] >= invoke.time_ns:
                continue
            judged += 1
            status = completion.result.get("status")
            if status in _ACTIVE:
                log.add("stale-session", f"session {session} read {status} after its stop was acknowledged",
                        (stop[1], invoke.index, completion.index), session_id=session, status=status)
        elif completion.status == 404:
            start = started.get(session)
            if start is None or start[0] >= invoke.time_ns or start[2][0] != invoke.tenant:
                continue
            if invoke.tenant in sweeping or deletes.get(start[2], NO_UNDOERS).end_after(0) < INF:
                continue  # its appointment (or every old row of the tenant) may have gone
            judged += 1
            log.add("session-read-lost", f"session {session} read 404 after its start was acknowledged",
                    (start[1], invoke.index, completion.index), session_id=session)
    return judged


def _judge_appointment_reads(log: ViolationLog, history: History) -> tuple[int, int]:
    timeline = history.view(AssignTimeline)
    judged = ambiguous = 0
    for invoke, completion in history.pairs_of(APPOINTMENT_READ):
        if completion is None or completion.status != 200:
            continue
        appointment = str(invoke.args.get("appointment_id"))
        last = timeline.last_write(appointment, invoke.time_ns, completion.time_ns)
        if last is None:
            continue
        if last == AMBIGUOUS:
            ambiguous += 1
            continue
        assert isinstance(last, tuple)
        judged += 1
        read = completion.result.get("assigned_rep_id")
        if read != last[2]:
            log.add("stale-assignment", f"appointment {appointment} read assigned to {read or 'nobody'}, but the "
                    f"last acknowledged write left it {'assigned to ' + str(last[2]) if last[2] else 'unassigned'}",
                    tuple(i for i in (last[3], invoke.index, completion.index) if i is not None),
                    appointment_id=appointment, read=read, written=last[2])
    return judged, ambiguous


def _judge_call_reads(log: ViolationLog, history: History) -> int:
    applied: dict[tuple[object, object], tuple[float, int]] = {}  # (tenant, call) -> earliest evidence (time, index)
    for invoke, completion in history.acknowledged_of(WEBHOOK_DELIVER):
        assert completion is not None
        if completion.result.get("status") != "applied" or "superseded" in invoke.args \
                or "bad_signature" in invoke.args:
            continue
        call = (invoke.tenant, invoke.args.get("call_id"))
        if completion.time_ns < applied.get(call, (INF, 0))[0]:
            applied[call] = (completion.time_ns, completion.index)
    reads = [pair for pair in history.pairs_of(CALL_READ) if pair[1] is not None and pair[1].status == 200
             and isinstance(pair[1].result.get("analyses"), int)]
    for invoke, completion in reads:  # a read that saw an analysis is evidence too (a reader's, not a writer's)
        assert completion is not None
        call = (invoke.tenant, invoke.args.get("call_id"))
        if completion.result["analyses"] > 0 and completion.time_ns < applied.get(call, (INF, 0))[0]:
            applied[call] = (completion.time_ns, completion.index)
    judged = 0
    for invoke, completion in reads:
        assert completion is not None
        evidence = applied.get((invoke.tenant, invoke.args.get("call_id")))
        if evidence is None or evidence[0] >= invoke.time_ns:
            continue
        judged += 1
        if completion.result["analyses"] == 0:
            call = invoke.args.get("call_id")
            what = "its job's delivery was answered applied" if history[evidence[1]].f == WEBHOOK_DELIVER \
                else "an earlier read showed one"
            log.add("stale-call", f"call {call} read with no analysis after {what}",
                    (evidence[1], invoke.index, completion.index), call_id=call)
    return judged
