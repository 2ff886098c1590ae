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
  key was first sent (a retry or replay under the key acted then).

Reads answered while a fault was in place are judged like the others: a
fault may refuse or delay a read, not make it answer an old state.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import (APPOINTMENT_READ, DELETION_CONFIRM, RETENTION_RUN, SESSION_READ,
                                                   STARTS, STOPS)
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
    return log.verdict(session_reads_judged=session_reads, appointment_reads_judged=appointment_reads,
                       appointment_reads_ambiguous=ambiguous)


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
