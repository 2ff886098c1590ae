"""single-active-session: never two active (pending/recording) sessions for one appointment.

Two views. The final state: at most one active session row per appointment.
The history: two sessions acknowledged for one appointment whose *certain*
lifetimes intersect (see ``timeline``): each is certainly active from its
first acknowledgement until the earliest stop (or appointment delete) that
could have acted on it. Stops that failed count for nothing; stops with an
unknown outcome may have acted at any time after their invoke, so a start
acknowledged after another session's stop was merely attempted is never
flagged. Answers: a stop refused with a 409 other than the Idempotency-Key
protocol's broke the promise that stopping a stopped session answers its state,
and a start refused with 409 active-session-exists must name the session that
blocked it: an id (not none), a session of that appointment (per the final
state; one the final state lacks while it has the appointment never existed),
and not one a stop had certainly ended before the start was sent
(a stop answered 2xx before the start's invoke). A replayed 409 is the stored
answer of an earlier call, whose moment is unknown, so it is not judged. A start
answered 2xx started a session of its own: answered a session another start
was answered with (not as a replay of that start's key), it is
``start-answered-existing``.

A stop of a stopped session answers its state, so its only refusals are 404,
the Idempotency-Key protocol's and the limiter's (429; a 409 in-flight or
resource-busy; a 400 or 422 naming an ``idempotency-key-`` problem). The
load stops with a valid token of a user of the tenant, and any of them may
stop any of its sessions (docs/API.md), so a 401 or 403 is ``stop-refused``
too (the refusal sweep over the fault scenarios, 2026-12-05: 0 of 14 stop
403s judged). Any other 4xx (a 400 or 422 "session not active", a 409 naming
another problem) is ``stop-refused``; a 409 whose body names no problem is
not judged (an in-flight 409 of a backend that words it its own way). A 404
is no such session, except for a session of the stopping tenant, started
before the stop was sent and still there at the end: it existed, so its 404 is
``stop-refused`` too. And
"unchanged" includes the time it stopped: every 2xx stop of one session that
reports ``stopped_at`` reports the same one, that of the final row
(``stop-restamped``: a second stop wrote a new stopped_at, a second stop in
all but name).

A 2xx answer describes what it did (a client acts on it): a stop's names
the session stopped (its ``id``, the appointment its start named) and says it
is no longer active (``stop-answered-active``: a stop answered from the row
as loaded before it wrote, found by a sweep that rewrote fields of 2xx
answers and counted what no rule read); a start's names the appointment
asked for and an active session, unless a stop of that session had been sent
before the answer came (``start-answered-inactive``). Replayed starts are the
stored answer of an earlier moment and are judged only for the appointment.

A start or stop is never an error while only Redis is faulty (its locks
fail open; the partial unique index decides, and its refusal is a 409): a
5xx with no fault in place on the database, the app or their links is
``start-errored`` or ``stop-errored``.
"""

from __future__ import annotations

import re
from collections import defaultdict

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import STARTS, STOPS
from stormproof.harness.invariants.checkers._acted import probe_writes
from stormproof.harness.invariants.checkers._common import AppointmentKey, deleters, possible_span, write_began
from stormproof.harness.invariants.checkers._probes import FaultWindows
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Row, Snapshot, timestamp_seconds
from stormproof.harness.invariants.timeline import INF, NO_UNDOERS, Interval, report_overlaps
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_single_active_session"]

NAME = "single-active-session"
ACTIVE = frozenset(("pending", "recording"))
#: 409s a stop may answer: the Idempotency-Key protocol's, and a transient busy resource.
_STOP_CONFLICTS_ALLOWED = frozenset(("idempotency-key-in-flight", "resource-busy"))
#: 4xx a stop may answer whatever its problem: no such session (or another tenant's), no valid
#: token or role, rate-limited. A 409 is judged by its problem (above), a 400 or 422 too (below).
_STOP_REFUSALS_ALLOWED = frozenset((404, 429))
#: Seconds two stopped_at values may differ by and still be one (the database keeps microseconds).
_STOPPED_AT_SLACK_S = 1e-5


#: A stop route as a probe fills it: the session's id is in the path.
_STOP_PATH = re.compile(r"/recordings/(?:sessions/)?(?P<id>[^/?]+)/stop(?:\?|$)")


def _probe_stops(history: History) -> list[tuple[object, tuple[float, float]]]:
    """Stops that probes sent (derived from the API document, so not ``session.stop`` ops).

    A probe that stopped a session ends it as surely as a stop of the load: without
    this, a session a probe stopped looks active forever and the next start of its
    appointment is a false violation. Only answers that may have stopped it count
    (``_acted``); a refusal such as a cross-tenant probe's 404 stopped nothing, and
    counting it would hide a real overlap.
    """
    return [(match.group("id"), span) for _, match, span in probe_writes(history, "POST", _STOP_PATH)]


@checker(NAME, "safety")
def check_single_active_session(history: History, snapshot: Snapshot) -> Verdict:
    """Never two active sessions for one appointment, in the history or in the final state."""
    log = ViolationLog(NAME, "safety", snapshot.config)

    # Each session's first acknowledgement (a replay may acknowledge it again).
    first_ack: dict[object, tuple[AppointmentKey, Op, Op]] = {}
    for invoke, completion in history.acknowledged_of(*STARTS):
        assert completion is not None
        session_id = completion.result.get("id")
        if session_id is None:
            continue
        known = first_ack.get(session_id)
        if known is None or completion.time_ns < known[2].time_ns:
            appointment = invoke.args.get("appointment_id", completion.result.get("appointment_id"))
            first_ack[session_id] = ((invoke.tenant, appointment), invoke, completion)

    stop_spans: dict[object, list[tuple[float, float]]] = defaultdict(list)
    for pair in history.pairs_of(*STOPS):
        span = possible_span(pair)
        if span is not None:
            stop_spans[pair[0].args.get("session_id")].append(span)
    probe_stops = _probe_stops(history)
    for session_id, span in probe_stops:
        stop_spans[session_id].append(span)
    deletes = deleters(history)

    horizon = history[-1].time_ns if len(history) else 0
    lifetimes: dict[AppointmentKey, list[Interval]] = defaultdict(list)
    spans_of = stop_spans.get
    for session_id, (key, invoke, completion) in first_ack.items():
        # Any stop of the session counts, however early: a stop cannot act before the
        # session exists, and the acknowledgement may be a replay of an old creation.
        spans = spans_of(session_id)
        end = min([span[0] for span in spans]) if spans else INF
        if deletes:  # with none, every appointment's undoers are NO_UNDOERS, which end nothing
            end = min(end, deletes.get(key, NO_UNDOERS).end_after(write_began(completion, invoke)))
        lifetimes[key].append(Interval(completion.time_ns, end, session_id, completion.index))

    report_overlaps(
        log, lifetimes, horizon,
        lambda appointment, earlier, later: (
            f"appointment {appointment}: sessions {earlier.group} and {later.group} were both "
            f"acknowledged and certainly active together"
        ),
        "sessions",
    )

    rows = snapshot.recording_sessions
    active_final = 0
    if rows is None:
        log.cannot("recording_sessions not in snapshot")
    else:
        active: dict[tuple[object, object], list[object]] = defaultdict(list)
        for row in rows:
            if row.get("status") in ACTIVE:
                active[(row.get("company_id"), row.get("appointment_id"))].append(row.get("id"))
        active_final = sum(len(ids) for ids in active.values())
        for (company, appointment), ids in active.items():
            if len(ids) > 1:
                ops = [first_ack[s][2].index for s in ids if s in first_ack]
                log.add(
                    "final-state",
                    f"appointment {appointment}: {len(ids)} active sessions in the final state",
                    ops,
                    badness=float(len(ids)),
                    company_id=company,
                    appointment_id=appointment,
                    sessions=tuple(sorted(map(str, ids))),
                )

    refused = 0
    for invoke, completion in history.pairs_of(*STOPS):
        if completion is not None and _refuses_stop(completion.status, completion.result.get("problem")):
            refused += 1
            refusal = f"{completion.status} {completion.result.get('problem') or ''}".rstrip()
            log.add("stop-refused",
                    f"stopping session {invoke.args.get('session_id')} was refused with {refusal}: "
                    "a stop of a stopped session answers its state",
                    (invoke.index, completion.index), session_id=invoke.args.get("session_id"),
                    status=completion.status)

    refused += _judge_stops_not_found(log, history, first_ack, rows)
    errored = _judge_errors(log, history)
    taken_over = _judge_acknowledged_twice(log, first_ack, history)
    restamped = _check_stopped_at(log, history, rows)
    answers = _judge_answers(log, history, first_ack, stop_spans, rows)
    appointments = snapshot.table("appointments")
    misnamed, judged = _judge_conflicts(log, history, rows, probe_stops,
                                        None if appointments is None else {str(a.get("id")) for a in appointments})

    return log.verdict(
        conflicts_judged=judged,
        conflicts_misnamed=misnamed,
        stops_refused=refused,
        errored=errored,
        starts_answered_existing=taken_over,
        stops_restamped=restamped,
        answers_judged=answers,
        acknowledged_sessions=len(first_ack),
        appointments=len(lifetimes),
        active_sessions_final=active_final,
    )


#: The only fault target that excuses no error of a start or stop: Redis holds locks and limits, which
#: fail open, while the database's guards decide (plan A2, B3, E5).
_FAILS_OPEN = "redis"


def _judge_errors(log: ViolationLog, history: History) -> int:
    """Starts and stops answered 5xx while no fault but a Redis one was in place: ``start-errored``.

    A start the partial unique index refuses is a conflict (409 active-session-exists), and a Redis
    outage takes the lock away, not the answer: the database decides. An app that let the index's
    refusal through as a 500 passed redis-flap (only its error rate, reported apart from the verdict,
    was 2.7 % against 2 %; 2026-12-03). A fault on the database, the app or its links excuses a 5xx,
    as does the ``AFTER_FAULT_S`` after one (the same margin as server-errors-explained's).
    """
    faults = FaultWindows(history, lambda _fault, target: target != _FAILS_OPEN)
    found = 0
    for invoke, completion in history.pairs_of(*STARTS, *STOPS):
        if completion is None or completion.status is None or completion.status < 500:
            continue
        if faults.may_explain(invoke.time_ns, completion.time_ns):
            continue  # the margin server-errors-explained gives: a broken pooled connection found when next used
        found += 1
        what = invoke.args.get("appointment_id") or invoke.args.get("session_id")
        problem = completion.result.get("problem")
        log.add("start-errored" if invoke.f in STARTS else "stop-errored",
                f"{invoke.f} of {what} answered {completion.status}{f' {problem}' if problem else ''} with no "
                "fault in place but on Redis: a conflict the database decides is a 409, and locks fail open",
                (invoke.index, completion.index), status=completion.status, appointment_id=invoke.args.get(
                    "appointment_id"), session_id=invoke.args.get("session_id"))
    return found


def _judge_stops_not_found(log: ViolationLog, history: History,
                           first_ack: dict[object, tuple[AppointmentKey, Op, Op]], rows: tuple[Row, ...] | None) -> int:
    """A stop answered 404 for a session of its own tenant that existed all along (``stop-refused``).

    404 is a stop's answer for no such session (or another tenant's), so it is not judged by its
    status alone. But a session whose start was answered to this tenant before the stop was sent, and
    whose row is still there at the end (rows do not come back), existed when the stop arrived: a 404
    says "no such session" of a stopped one (an app that looked up active sessions only; found
    2026-12-04: session-start-storm passed it).
    """
    if rows is None:
        return 0
    present = {str(row.get("id")): row.get("company_id") for row in rows}
    found = 0
    for invoke, completion in history.pairs_of(*STOPS):
        if completion is None or completion.status != 404 or completion.result.get("replayed"):
            continue  # a replayed 404 is the stored answer of an earlier request, at an unknown moment
        session_id = invoke.args.get("session_id")
        started = first_ack.get(session_id)
        if started is None or str(present.get(str(session_id), "")) != str(invoke.tenant):
            continue
        _, start_invoke, start_completion = started
        if start_invoke.tenant != invoke.tenant or start_completion.time_ns >= invoke.time_ns:
            continue
        found += 1
        log.add("stop-refused",
                f"stopping session {session_id} was answered 404, though the session was started for this "
                "tenant before the stop was sent and is still there at the end: a stop of a stopped session "
                "answers its state", (start_completion.index, invoke.index, completion.index),
                session_id=session_id, status=404)
    return found


def _judge_acknowledged_twice(log: ViolationLog, first_ack: dict[object, tuple[AppointmentKey, Op, Op]],
                              history: History) -> int:
    """A session acknowledged to two different starts: the later one started nothing (``start-answered-existing``).

    A start answered 2xx says it started a session. Answering a start the session another start began
    (an "idempotent" start without a key) leaves two clients that each believe the recording is theirs:
    one stops it under the other. Only a replay may answer a session again: an answer marked replayed,
    or a request under the key of the start that was acknowledged first (its key's first request, still
    running, may be waited for and its result given). Found 2026-12-04 with an app that answered the
    active session 201 to a second start: session-start-storm passed (one active session throughout).
    """
    found = 0
    for invoke, completion in history.acknowledged_of(*STARTS):
        assert completion is not None
        session_id = completion.result.get("id")
        first = first_ack.get(session_id) if session_id is not None else None
        if first is None or completion.result.get("replayed"):
            continue
        _, first_invoke, first_completion = first
        if first_completion is completion:
            continue
        key = invoke.args.get("idempotency_key")
        if key is not None and key == first_invoke.args.get("idempotency_key") and invoke.tenant == first_invoke.tenant:
            continue
        found += 1
        log.add("start-answered-existing",
                f"appointment {invoke.args.get('appointment_id')}: {invoke.f} was answered {completion.status} "
                f"with session {session_id}, which {first_invoke.f} had been answered before (and not as a "
                "replay of its key): this start started nothing; a start while a session is active is refused "
                "409 active-session-exists naming it",
                (first_invoke.index, first_completion.index, invoke.index, completion.index),
                appointment_id=invoke.args.get("appointment_id"), session_id=session_id, tenant=invoke.tenant)
    return found


def _judge_conflicts(log: ViolationLog, history: History, rows: tuple[Row, ...] | None,
                     probe_stops: list[tuple[object, tuple[float, float]]],
                     appointments: set[str] | None = None) -> tuple[int, int]:
    """Each fresh 409 active-session-exists of a start names a session that may have been active.

    A session named that the final state does not hold, of an appointment it still holds, never existed:
    nothing deletes a session but its appointment's (or company's) deletion or retention, which take the
    appointment too. (A start whose own insert was taken for the index's refusal answered 409 naming the
    session it had just rolled back: every start refused, nothing ever recorded, and every scenario passed,
    a mutation sweep, 2026-12-06.)

    Returns (violations, conflicts judged). "Certainly stopped" uses only stops
    answered 2xx, the load's or a probe's: a stop's 2xx says the session is
    stopped, whenever it was (a stop with no answer ends at INF: never certain).
    """
    conflicts = [(invoke, completion) for invoke, completion in history.pairs_of(*STARTS)
                 if completion is not None and completion.status == 409]
    if not conflicts:  # nothing to judge: skip indexing the stops and the rows
        return 0, 0
    stopped_at: dict[object, float] = {}
    for invoke, completion in history.acknowledged_of(*STOPS):
        assert completion is not None
        session_id = invoke.args.get("session_id")
        stopped_at[session_id] = min(stopped_at.get(session_id, INF), completion.time_ns)
    for session_id, (_, answered) in probe_stops:  # a probe's stop answered 2xx ended it as surely
        stopped_at[session_id] = min(stopped_at.get(session_id, INF), answered)
    appointment_of = {str(row.get("id")): row.get("appointment_id") for row in rows or ()}
    misnamed = judged = 0
    for invoke, completion in conflicts:
        if completion.result.get("replayed") or completion.result.get("problem") != "active-session-exists":
            continue
        judged += 1
        named = completion.result.get("active_session_id")
        appointment = invoke.args.get("appointment_id")
        problem = None
        if not named:
            problem = "names no session"
        elif named in appointment_of and str(appointment_of[named]) != str(appointment):
            problem = f"names session {named}, which belongs to appointment {appointment_of[named]}"
        elif (rows is not None and appointments is not None and named not in appointment_of
              and str(appointment) in appointments):
            problem = (f"names session {named}, which never existed (the final state has the appointment, and "
                       "no such session)")
        elif stopped_at.get(named, INF) < invoke.time_ns:
            problem = f"names session {named}, which a stop answered 2xx had ended before this start was sent"
        if problem is None:
            continue
        misnamed += 1
        log.add("conflict-misnamed",
                f"appointment {appointment}: start refused with 409 active-session-exists that {problem}",
                (invoke.index, completion.index), appointment_id=appointment, active_session_id=named)
    return misnamed, judged


def _refuses_stop(status: int | None, problem: object) -> bool:
    """Whether a stop's answer refused it where the session's state should have been answered.

    Stopping a stopped session answers its state, so a 4xx that is not "no such session", a rate
    refusal, or the Idempotency-Key protocol's own, refused an idempotent stop: typically a 400
    or 422 "session not active" (a 401 or 403 of the load's valid token of a tenant user, too). A 409
    with no problem named is not judged.
    """
    if status is None or not 400 <= status < 500 or status in _STOP_REFUSALS_ALLOWED:
        return False
    if status == 409:
        return problem is not None and problem not in _STOP_CONFLICTS_ALLOWED
    return not (isinstance(problem, str) and problem.startswith("idempotency-key-"))


def _seconds(value: object) -> float | None:
    """A stopped_at as epoch seconds (an answer's ISO 8601 text, or a snapshot's number); None if neither."""
    try:
        moment = timestamp_seconds(value)
    except ValueError:
        return None
    return float(moment) if isinstance(moment, (int, float)) and not isinstance(moment, bool) else None


#: Statuses an answer may give an active session (an external backend may say ``active``).
_ACTIVE_ANSWERED = frozenset(("pending", "recording", "active"))


def _judge_answers(log: ViolationLog, history: History, first_ack: dict[object, tuple[AppointmentKey, Op, Op]],
                   stop_spans: dict[object, list[tuple[float, float]]], rows: tuple[Row, ...] | None) -> int:
    """2xx starts and stops answer the session they acted on, in the state they left it: a stop's status is
    the final row's (whatever the backend calls a stopped session; sessions never restart). Returns the
    answers judged. Fields an answer leaves out are not judged (a backend may answer less)."""
    judged = 0
    final = {row.get("id"): row.get("status") for row in rows or ()}
    for invoke, completion in history.acknowledged_of(*STARTS):
        assert completion is not None
        judged += 1
        result, asked = completion.result, invoke.args.get("appointment_id")
        named = result.get("appointment_id")
        if asked is not None and named is not None and str(named) != str(asked):
            log.add("answered-other-appointment", f"a start of appointment {asked} was answered with session "
                    f"{result.get('id')} of appointment {named}", (invoke.index, completion.index),
                    appointment_id=asked, answered=named)
        status = result.get("status")
        if status is None or status in _ACTIVE_ANSWERED or result.get("replayed"):
            continue
        session = result.get("id")
        if any(span[0] < completion.time_ns for span in stop_spans.get(session, ())):
            continue  # a stop sent before the answer came may have ended it before the answer was written
        log.add("start-answered-inactive", f"a start of appointment {asked} was answered {status} (session "
                f"{session}), with no stop of it sent: the session it started is not active",
                (invoke.index, completion.index), appointment_id=asked, session_id=session, status=status)
    for invoke, completion in history.acknowledged_of(*STOPS):
        assert completion is not None
        judged += 1
        result, session = completion.result, invoke.args.get("session_id")
        status = result.get("status")
        kept = final.get(session)
        if status in _ACTIVE_ANSWERED or (status is not None and kept is not None and kept not in _ACTIVE_ANSWERED
                                          and status != kept):
            log.add("stop-answered-active", f"a stop of session {session} was answered {status}: a stopped "
                    f"session answers its state (the final row's is {kept})",
                    (invoke.index, completion.index), session_id=session, status=status, row=kept)
        named, appointment = result.get("id"), result.get("appointment_id")
        started = first_ack.get(session)
        if session is not None and named is not None and str(named) != str(session):
            other = f"session {named}"
        elif started is not None and appointment is not None and str(appointment) != str(started[0][1]):
            other = f"a session of appointment {appointment} (it was started for {started[0][1]})"
        else:
            continue
        log.add("stop-answered-other", f"a stop of session {session} was answered with {other}",
                (invoke.index, completion.index), session_id=session, answered=str(named))
    return judged


def _check_stopped_at(log: ViolationLog, history: History, rows: tuple[Row, ...] | None) -> int:
    """Every 2xx stop of a session reports one stopped_at, the final row's: a later stop changed nothing.

    Returns how many sessions broke it. The first answer (by completion time) is the reference
    when the final row is gone or has none; an answer without a readable stopped_at is not judged.
    """
    answered: dict[object, list[tuple[float, Op, Op]]] = defaultdict(list)
    for invoke, completion in history.acknowledged_of(*STOPS):
        assert completion is not None
        moment = _seconds(completion.result.get("stopped_at"))
        if moment is not None:
            answered[invoke.args.get("session_id")].append((moment, invoke, completion))
    if not answered:
        return 0
    final = {row.get("id"): _seconds(row.get("stopped_at")) for row in rows or () if row.get("status") == "stopped"}
    broken = 0
    for session_id, stops in answered.items():
        stops.sort(key=lambda item: (item[2].time_ns, item[2].index))
        reference = final.get(session_id)
        source = "the final row's"
        if reference is None:
            reference, source = stops[0][0], "the first stop's"
        odd = next(((moment, invoke, completion) for moment, invoke, completion in stops
                    if abs(moment - reference) > _STOPPED_AT_SLACK_S), None)
        if odd is None:
            continue
        broken += 1
        moment, invoke, completion = odd
        log.add("stop-restamped",
                f"session {session_id}: a stop answered stopped_at {completion.result.get('stopped_at')}, "
                f"{moment - reference:+.6f} s from {source}: stopping a stopped session changed its state",
                (stops[0][2].index, completion.index), tenant=invoke.tenant, session_id=session_id)
    return broken
