"""single-assignment: an appointment is assigned to one rep at most, and no rep is double-booked.

History: an ``ok`` assign certainly holds from its acknowledgement until the
earliest unassign (or appointment delete) that could have acted after the
assign began; two such spans for different reps of one appointment that
intersect are a violation. Final state: at most one active assignment per
appointment, no rep with two active assignments whose windows
``[starts_at, ends_at)`` overlap, and the appointment's denormalised
``assigned_rep_id`` naming the rep of its active assignment (or nobody).
Answers: an assign refused 409 appointment-already-assigned naming the very
rep it asked for broke the promise that assigning the current rep again
answers the existing assignment, and so did one that answered 2xx with
another assignment id while the first certainly held (``reassign-replaced``:
the assign released the current assignment and made a new one, a second
execution the final state cannot show, since it keeps one active row).
A 2xx assign names the rep it was asked for (``assign-other-rep``: one that
answered 200 with another rep's current assignment told a caller that did
not read the body that its rep was assigned; the API's answer is 409
appointment-already-assigned).

A 409 rep-double-booked must be explained by an assignment of that rep to an
overlapping appointment that may have been in place
(``double-booked-unexplained``: a check that counts released assignments, or
windows that only touch, refuses a free rep). Likewise a 409
appointment-already-assigned must be explained by an assignment of the
appointment that may have been in place: one refused while the last
acknowledged write of the appointment left it unassigned and no other write may
have acted since is ``already-assigned-unexplained`` (found 2026-12-04 with a
check that read the appointment's latest assignment whatever its status: once
released, an appointment could never be assigned to another rep, and
assignment-storm passed with 1,882 such refusals).

Double booking is judged in the history too: two acknowledged assigns of one
rep to two appointments whose windows overlap (read from the final state),
holding at the same time, are ``rep-double-booked``, even if an unassign
later hid it from the final state. The answers to the load's assigns of
overlapping pairs (``args.overlap_pair``) are 200 or a 409; any other refusal
of that well-formed request (400, 403, 404, 422) or a 5xx outside a fault is
``assign-wrong-status``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import APPOINTMENT_DELETE, ASSIGN, UNASSIGN
from stormproof.harness.invariants.checkers._acted import probe_writes
from stormproof.harness.invariants.checkers._assign_timeline import AssignTimeline
from stormproof.harness.invariants.checkers._common import AppointmentKey, first_sent, possible_span, write_began
from stormproof.harness.invariants.checkers._probes import FaultWindows, answer_class
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Row, Snapshot
from stormproof.harness.invariants.timeline import NO_UNDOERS, Interval, Undoers, certain_overlaps, report_overlaps
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_single_assignment"]

NAME = "single-assignment"

#: The routes by which a probe can end an assignment, as it fills them: (method, path with the id in it).
_UNDO_ROUTES = (
    ("POST", re.compile(r"/appointments/(?P<id>[^/?]+)/unassign(?:\?|$)")),
    ("DELETE", re.compile(r"/appointments/(?P<id>[^/?]+)(?:\?|$)")),  # a deleted appointment's assignment ends too
)


def probe_undos(history: History) -> list[tuple[object, object, tuple[float, float]]]:
    """Unassigns and appointment deletes that probes sent (derived from the API document, so not load ops).

    A probe that unassigned an appointment ends its assignment as surely as an
    unassign of the load: without this, the next assign of that appointment to
    another rep looks like a second assignee (a false violation with every fix
    on, seen in smoke when the idempotency probe replayed an unassign). Only
    answers that may have acted count (``_acted``); a refusal such as a
    cross-tenant probe's 404 undid nothing, and counting it would hide a real
    double assignment. Keyed by the probing tenant, so another tenant's
    appointment is never freed by a probe.
    """
    return [(invoke.tenant, match.group("id"), span)
            for method, route in _UNDO_ROUTES for invoke, match, span in probe_writes(history, method, route)]


def assignment_undoers(history: History) -> dict[AppointmentKey, Undoers]:
    """Per appointment, the operations that may have ended its assignment: unassigns and appointment
    deletes of the load, and those a probe sent (``probe_undos``). Built once per history, shared."""
    return history.view(_assignment_undoers)


def _assignment_undoers(history: History) -> dict[AppointmentKey, Undoers]:
    undo_spans: dict[AppointmentKey, list[tuple[float, float]]] = defaultdict(list)
    for pair in history.pairs_of(UNASSIGN, APPOINTMENT_DELETE):
        span = possible_span(pair)
        if span is not None:
            undo_spans[(pair[0].tenant, pair[0].args.get("appointment_id"))].append(span)
    for tenant, appointment_id, span in probe_undos(history):
        undo_spans[(tenant, appointment_id)].append(span)
    return {key: Undoers(spans) for key, spans in undo_spans.items()}


@checker(NAME, "safety")
def check_single_assignment(history: History, snapshot: Snapshot) -> Verdict:
    """One rep per appointment at a time, and no rep booked twice for overlapping windows."""
    log = ViolationLog(NAME, "safety", snapshot.config)

    undoers = assignment_undoers(history)

    horizon = history[-1].time_ns if len(history) else 0
    holds: dict[AppointmentKey, list[Interval]] = defaultdict(list)
    same_rep: dict[tuple[AppointmentKey, object], list[Interval]] = defaultdict(list)  # grouped by assignment id
    ack_of_assignment: dict[object, int] = {}
    acks = 0
    for invoke, completion in history.acknowledged_of(ASSIGN):
        assert completion is not None
        acks += 1
        key = (invoke.tenant, invoke.args.get("appointment_id", completion.result.get("appointment_id")))
        rep = completion.result.get("rep_id", invoke.args.get("rep_id"))
        assignment_id = completion.result.get("id")
        if assignment_id is not None:
            ack_of_assignment.setdefault(assignment_id, completion.index)
        end = undoers.get(key, NO_UNDOERS).end_after(write_began(completion, invoke))
        holds[key].append(Interval(completion.time_ns, end, rep, completion.index))
        if assignment_id is not None and not completion.result.get("replayed"):
            same_rep[(key, rep)].append(Interval(completion.time_ns, end, assignment_id, completion.index))

    report_overlaps(
        log, holds, horizon,
        lambda appointment, earlier, later: (
            f"appointment {appointment}: acknowledged as assigned to rep {earlier.group} and to rep "
            f"{later.group} with no unassign between"
        ),
        "reps",
    )

    replaced = _replaced_assignments(log, same_rep)
    double_booked = _double_bookings(log, holds, snapshot.appointments or ())
    _judge_pair_answers(log, history)

    rows = snapshot.appointment_assignments
    active_final = 0
    if rows is None:
        log.cannot("appointment_assignments not in snapshot")
    else:
        active = [row for row in rows if row.get("status") == "active"]
        active_final = len(active)
        _check_final(log, active, ack_of_assignment, snapshot.appointments)

    refused = _check_reassign_answers(log, history)
    other_rep = _check_answered_rep(log, history)
    unexplained = _unexplained_double_booked(log, history, snapshot)
    held_judged, held_unexplained = _unexplained_already_assigned(log, history)
    return log.verdict(acknowledged_assigns=acks, appointments=len(holds), active_assignments_final=active_final,
                       same_rep_refused=refused, same_rep_replaced=replaced, other_rep_answered=other_rep,
                       double_booked=double_booked, double_booked_refusals_unexplained=unexplained,
                       already_assigned_refusals_judged=held_judged,
                       already_assigned_refusals_unexplained=held_unexplained)


def _unexplained_already_assigned(log: ViolationLog, history: History) -> tuple[int, int]:
    """409 appointment-already-assigned while the appointment was certainly free: (judged, violations).

    Judged where the history says for sure what the appointment's state was from the request's first send (its
    key's) to its answer: the last write that ended before it, with no other write that may have acted since
    (``AssignTimeline``). A refusal with no write before it (the seed's state), or with another write in flight,
    is not judged; nor is a replayed answer (an earlier request's).
    """
    refusals = [(invoke, completion) for invoke, completion in history.pairs_of(ASSIGN)
                if completion is not None and completion.status == 409
                and completion.result.get("problem") == "appointment-already-assigned"
                and not completion.result.get("replayed")]
    if not refusals:
        return 0, 0
    timeline = history.view(AssignTimeline)
    first = first_sent(history, ASSIGN)
    # Each appointment's acknowledged assigns (answer time, answer index), cited with the refusal: the assignment
    # the unassign released is what a replay needs to show the refusal again.
    assigned: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for invoke, completion in history.acknowledged_of(ASSIGN):
        assert completion is not None
        assigned[str(invoke.args.get("appointment_id"))].append((completion.time_ns, completion.index))
    judged = unexplained = 0
    for invoke, completion in refusals:
        key = invoke.args.get("idempotency_key")
        sent = min(invoke.time_ns, first.get((invoke.tenant, key), invoke.time_ns)) if key is not None \
            else invoke.time_ns
        appointment = str(invoke.args.get("appointment_id"))
        last = timeline.last_write(appointment, sent, completion.time_ns)
        if not isinstance(last, tuple):
            continue
        judged += 1
        if last[2] is not None:
            continue  # assigned to a rep: the refusal is explained (or, naming the same rep, reassign-refused's)
        unexplained += 1
        before = [index for at, index in assigned.get(appointment, ()) if at < last[0]]
        log.add("already-assigned-unexplained",
                f"assigning rep {invoke.args.get('rep_id')} to appointment {appointment} was refused 409 "
                "appointment-already-assigned, but the last acknowledged write left it unassigned and no other "
                "write of it may have acted since",
                tuple(i for i in (before[-1] if before else None, last[3], invoke.index, completion.index)
                      if i is not None),
                appointment_id=appointment, rep_id=invoke.args.get("rep_id"))
    return judged, unexplained


#: A probe's assign: the appointment it names (the rep is in its body, not read: any rep is assumed).
_ASSIGN_ROUTE = re.compile(r"/appointments/(?P<id>[^/?]+)/assign(?:\?|$)")
_NEVER = float("-inf")
_OPEN = float("inf")


def _unexplained_double_booked(log: ViolationLog, history: History, snapshot: Snapshot) -> int:
    """A 409 rep-double-booked must be explained by an assignment of that rep that may have been in place.

    The refusal says the rep holds an active assignment whose window overlaps the appointment's. It is
    explained by an assignment of the rep to another appointment of the tenant whose window overlaps
    (``[starts_at, ends_at)``: windows that only touch do not) that may have been active: an assign of
    the rep to it not refused (2xx, or no answer), sent before the refusal came back and not certainly
    ended before the refused request was sent (an acknowledged unassign or delete of that appointment, sent
    after the assign's answer and answered before the refused request began); a probe's assign of it (any
    rep); or an assignment in the final state no assign of the run made (the seed's), until such an undo.
    Anything else is ``double-booked-unexplained``: the check counted a released assignment, or windows
    that touch, and refused a rep who was free (found 2026-12-03: assignment-storm passed both). Replayed
    answers are left out (their refusal was decided when the key was first used).
    """
    rows = snapshot.appointments
    if rows is None:
        return 0
    windows = {str(row.get("id")): (row.get("company_id"), row.get("starts_at"), row.get("ends_at")) for row in rows}
    sources: dict[str, list[tuple[str | None, float, float]]] = defaultdict(list)  # appointment -> (rep, sent, answered)
    made: set[str] = set()
    for invoke, completion in history.pairs_of(ASSIGN):
        if completion is not None and completion.result.get("id") is not None:
            made.add(str(completion.result.get("id")))
        if completion is not None and completion.type == "fail":
            continue  # a definite refusal assigned nothing
        answered = completion.time_ns if completion is not None and completion.type == "ok" else _OPEN
        sources[str(invoke.args.get("appointment_id"))].append((str(invoke.args.get("rep_id")), invoke.time_ns, answered))
    for _, match, span in probe_writes(history, "POST", _ASSIGN_ROUTE):
        sources[match.group("id")].append((None, span[0], _OPEN))
    for row in snapshot.appointment_assignments or ():
        if str(row.get("id")) not in made:
            sources[str(row.get("appointment_id"))].append((str(row.get("rep_id")), _NEVER, _NEVER))
    ends: dict[str, list[tuple[float, float]]] = defaultdict(list)  # appointment -> certain undos (sent, answered)
    for invoke, completion in history.acknowledged_of(UNASSIGN, APPOINTMENT_DELETE):
        assert completion is not None
        ends[str(invoke.args.get("appointment_id"))].append((invoke.time_ns, completion.time_ns))

    def may_hold(appointment: str, rep: str, sent: float, answered: float) -> bool:
        for source_rep, began, done in sources.get(appointment, ()):
            if source_rep is not None and source_rep != rep or began >= answered:
                continue
            if not any(undo_sent > done and undo_answered < sent for undo_sent, undo_answered in ends[appointment]):
                return True
        return False

    found = 0
    for invoke, completion in history.pairs_of(ASSIGN):
        if completion is None or completion.status != 409 or completion.result.get("replayed") \
                or completion.result.get("problem") != "rep-double-booked":
            continue
        target, rep = str(invoke.args.get("appointment_id")), str(invoke.args.get("rep_id"))
        if target not in windows or not all(isinstance(t, (int, float)) for t in windows[target][1:]):
            continue
        company, start, end = windows[target]
        overlapping = [other for other in sources if other != target and (
            other not in windows  # gone from the final state: its window is unknown, so it may overlap
            or windows[other][0] == company and isinstance(windows[other][1], (int, float))
            and isinstance(windows[other][2], (int, float)) and windows[other][1] < end and start < windows[other][2])]
        if any(may_hold(other, rep, invoke.time_ns, completion.time_ns) for other in overlapping):
            continue
        found += 1
        log.add("double-booked-unexplained",
                f"assigning rep {rep} to appointment {target} was refused 409 rep-double-booked, but no assignment "
                "of that rep to an appointment whose window overlaps can have been in place: the check counted "
                "something else (a released assignment, a window that only touches)", (invoke.index, completion.index),
                tenant=invoke.tenant, appointment_id=target, rep_id=rep)
    return found


def _check_answered_rep(log: ViolationLog, history: History) -> int:
    """A 2xx assign answers an assignment of the rep it asked for, never another rep's (which is a 409)."""
    found = 0
    for invoke, completion in history.acknowledged_of(ASSIGN):
        assert completion is not None
        asked, answered = invoke.args.get("rep_id"), completion.result.get("rep_id")
        if asked is None or answered is None or str(asked) == str(answered):
            continue
        found += 1
        log.add("assign-other-rep", f"assigning rep {asked} to appointment {invoke.args.get('appointment_id')} "
                f"answered {completion.status} with an assignment of rep {answered}, not 409 already assigned",
                (invoke.index, completion.index), tenant=invoke.tenant, appointment_id=invoke.args.get("appointment_id"),
                rep_id=asked, answered_rep_id=answered)
    return found


def _replaced_assignments(log: ViolationLog, same_rep: dict[tuple[AppointmentKey, object], list[Interval]]) -> int:
    """Two fresh 2xx assigns of one rep to one appointment, certainly holding together, naming two assignments.

    Assigning the current rep again answers the existing assignment (plan A3, docs/API.md). Both
    holds are certain (no unassign or delete could have acted since either began), so the second
    assign found the first one active and still made another: it released and replaced it, or ran
    twice. Replayed answers are left out: they name the assignment of an earlier call, which an
    unassign may have ended before either hold began.
    """
    found = 0
    for ((tenant, appointment), rep), intervals in same_rep.items():
        if len(intervals) < 2:
            continue
        for earlier, later in certain_overlaps(intervals):
            found += 1
            log.add("reassign-replaced", f"appointment {appointment}: assigning rep {rep} again answered assignment "
                    f"{later.group} while assignment {earlier.group} of the same rep certainly held, instead of "
                    f"answering the existing assignment", (earlier.ref, later.ref), tenant=tenant,
                    appointment_id=appointment, rep_id=rep, assignments=(earlier.group, later.group))
    return found


def _double_bookings(log: ViolationLog, holds: dict[AppointmentKey, list[Interval]], appointments: Iterable[Row]) -> int:
    """One rep certainly holding two appointments whose windows overlap, at the same time; one report per pair."""
    windows = {row.get("id"): (row.get("starts_at"), row.get("ends_at")) for row in appointments}
    by_rep: dict[tuple[object, object], dict[object, list[Interval]]] = defaultdict(lambda: defaultdict(list))
    for (tenant, appointment), intervals in holds.items():
        for interval in intervals:
            by_rep[(tenant, interval.group)][appointment].append(interval)
    found = 0
    for (tenant, rep), held in by_rep.items():
        booked = [a for a in held if all(isinstance(t, (int, float)) for t in windows.get(a, (None, None)))]
        for i, first in enumerate(booked):
            for second in booked[i + 1:]:
                (s1, e1), (s2, e2) = windows[first], windows[second]
                if not (s1 < e2 and s2 < e1):
                    continue
                both = next(((x, y) for x in held[first] for y in held[second]
                             if x.start < y.end and y.start < x.end), None)
                if both is not None:
                    found += 1
                    log.add("rep-double-booked", f"rep {rep} was acknowledged as assigned to appointments {first} and "
                            f"{second}, whose windows overlap, at the same time", tuple(sorted((both[0].ref, both[1].ref))),
                            tenant=tenant, rep_id=rep, appointment_ids=(first, second))
    return found


def _judge_pair_answers(log: ViolationLog, history: History) -> None:
    """A well-formed assign of an overlapping pair answers 200 or 409 (already assigned, double booked)."""
    faults: FaultWindows | None = None
    for invoke, completion in history.pairs_of(ASSIGN):
        if completion is None or not (invoke.args.get("overlap_pair") or invoke.args.get("adjacent_pair")):
            continue
        faults = faults or FaultWindows(history)
        kind = answer_class(invoke, completion, faults)
        if kind == "5xx" or kind == "4xx" and completion.status != 409:
            log.add("assign-wrong-status", f"assigning rep {invoke.args.get('rep_id')} to appointment "
                    f"{invoke.args.get('appointment_id')} answered {completion.status}, not 200 or 409",
                    (invoke.index, completion.index), tenant=invoke.tenant, status=completion.status)


def _check_reassign_answers(log: ViolationLog, history: History) -> int:
    """Assigning the current rep again answers the existing assignment: a 409 naming that rep is a broken promise."""
    refused = 0
    for invoke, completion in history.pairs_of(ASSIGN):
        if completion is None or completion.status != 409:
            continue
        rep = invoke.args.get("rep_id")
        if completion.result.get("problem") == "appointment-already-assigned" and rep is not None \
                and completion.result.get("assigned_rep_id") == rep:
            refused += 1
            log.add("reassign-refused",
                    f"assigning rep {rep} to appointment {invoke.args.get('appointment_id')} was refused as "
                    f"already assigned to that same rep, instead of answering the existing assignment",
                    (invoke.index, completion.index), appointment_id=invoke.args.get("appointment_id"), rep_id=rep)
    return refused


def _check_final(
    log: ViolationLog,
    active: list[Row],
    ack_of_assignment: dict[object, int],
    appointments: tuple[Row, ...] | None,
) -> None:
    def ops(rows: list[Row]) -> list[int]:
        return [ack_of_assignment[row["id"]] for row in rows if row.get("id") in ack_of_assignment]

    per_appointment: dict[tuple[object, object], list[Row]] = defaultdict(list)
    per_rep: dict[tuple[object, object], list[Row]] = defaultdict(list)
    for row in active:
        per_appointment[(row.get("company_id"), row.get("appointment_id"))].append(row)
        per_rep[(row.get("company_id"), row.get("rep_id"))].append(row)

    for (company, appointment), rows in per_appointment.items():
        if len(rows) > 1:
            log.add(
                "final-appointment",
                f"appointment {appointment}: {len(rows)} active assignments in the final state",
                ops(rows),
                badness=float(len(rows)),
                company_id=company,
                appointment_id=appointment,
                reps=tuple(sorted(str(row.get("rep_id")) for row in rows)),
            )

    for (company, rep), rows in per_rep.items():
        if len(rows) < 2:
            continue
        rows = sorted(rows, key=lambda row: (row["starts_at"], str(row.get("id"))))
        reach = rows[0]
        for row in rows[1:]:
            if row["starts_at"] < reach["ends_at"]:
                log.add(
                    "final-rep-overlap",
                    f"rep {rep}: active assignments {reach.get('id')} and {row.get('id')} overlap in time",
                    ops([reach, row]),
                    badness=float(min(reach["ends_at"], row["ends_at"]) - row["starts_at"]),
                    company_id=company,
                    rep_id=rep,
                    assignments=(reach.get("id"), row.get("id")),
                )
            if row["ends_at"] > reach["ends_at"]:
                reach = row

    if appointments is None:
        return
    active_rep = {key: rows[0].get("rep_id") for key, rows in per_appointment.items() if len(rows) == 1}
    for appointment in appointments:
        key = (appointment.get("company_id"), appointment.get("id"))
        if key in per_appointment and len(per_appointment[key]) > 1:
            continue  # already reported
        expected = active_rep.get(key)
        if appointment.get("assigned_rep_id") != expected:
            log.add(
                "final-denormalised",
                f"appointment {appointment.get('id')}: assigned_rep_id is {appointment.get('assigned_rep_id')} "
                f"but the active assignment names {expected}",
                ops(per_appointment.get(key, [])),
                company_id=appointment.get("company_id"),
                appointment_id=appointment.get("id"),
            )
