"""no-lost-acknowledged-write: every 2xx write is reflected in the final state.

``ok`` means the write took effect, so the final state must show it unless a
later operation could have undone it:

- a started session exists (sessions only disappear with their appointment);
- a stopped session is ``stopped`` (sessions never restart);
- an assignment exists, and is ``released`` only if an unassign (or delete)
  of its appointment could have acted after it;
- an unassign released its appointment's assignments: an assignment an
  assign's answer named before the unassign's key was first sent, still
  ``active`` at the end, is ``unassign-lost`` (an unassign answered 200 that
  released nothing; a released assignment is never active again);
- a submitted call exists, and keeps the appointment or session its body
  named, in its answer and its final row (``call-unlinked``; null once that
  appointment or session is gone);
- a granted consent exists while its appointment does (consents, the evidence
  that processing was allowed, only go with their appointment: a deletion or
  retention that takes the appointment takes them);
- a created appointment exists, unless a deletion of it, or a retention run
  or a company deletion of its tenant, may have acted after it; and it has
  the title and window it was created with, the window as instants
  (``appointment-altered``: an offset the client wrote dropped on the way
  shifts it, found by a sweep that rewrote fields of 2xx answers, where no
  rule read an appointment's title or times), unless a probe may have
  patched it;
- every 2xx answer describing an appointment (a create's, a read's, an
  unassign's; an assign's window) gives the title and window it was created
  with, as instants (``appointment-answered-altered``: a create answered with
  its wall-clock time labelled UTC keeps a right row and misleads the client
  that books by it; the same sweep found no rule reading the answers).

The rows a request certainly created (calls, sessions started 201) carry a
``created_at`` taken while it ran, by one clock (``created-at-off``; see
``_created_at``).

``info`` writes may or may not have applied and are never flagged; an
appointment delete (or a confirmed deletion request of it) that may have
acted excuses everything under it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from stormproof.harness.history import History, Pair
from stormproof.harness.history.vocabulary import (APPOINTMENT_CREATE, APPOINTMENT_READ, ASSIGN, CALL_SUBMIT,
                                                   CONSENT_GRANT, DELETION_CONFIRM, DELETION_REQUEST, RETENTION_RUN,
                                                   STARTS, STOPS, UNASSIGN)
from stormproof.harness.invariants.checkers.single_assignment import assignment_undoers
from stormproof.harness.invariants.checkers._common import AppointmentKey, deleters, first_sent, write_began
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.checkers._acted import probe_writes
from stormproof.harness.invariants.checkers._created_at import check_created_at
from stormproof.harness.invariants.snapshot import Row, Snapshot, timestamp_seconds
from stormproof.harness.invariants.timeline import INF, NO_UNDOERS
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_no_lost_write"]

NAME = "no-lost-acknowledged-write"


def _rows_by_id(rows: tuple[Row, ...]) -> dict[object, Row]:
    return {row.get("id"): row for row in rows}


@checker(NAME, "safety")
def check_no_lost_write(history: History, snapshot: Snapshot) -> Verdict:
    """Acknowledged starts, stops, assigns and call submissions are all in the final state."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    deletes = deleters(history)
    deleting_tenants = {key[0] for key in deletes}
    checked = 0

    def deleted_after(key: AppointmentKey, begin: float) -> bool:
        return deletes.get(key, NO_UNDOERS).end_after(begin) < INF

    starts = history.acknowledged_of(*STARTS)
    stops = history.acknowledged_of(*STOPS)
    if starts or stops:
        if snapshot.recording_sessions is None:
            log.cannot("recording_sessions not in snapshot")
        else:
            sessions = _rows_by_id(snapshot.recording_sessions)
            session_appointment: dict[object, AppointmentKey] = {}
            for invoke, completion in starts:
                assert completion is not None
                session_id = completion.result.get("id")
                if session_id is None:
                    continue
                key = (invoke.tenant, invoke.args.get("appointment_id"))
                session_appointment[session_id] = key
                checked += 1
                if session_id not in sessions and not deleted_after(key, write_began(completion, invoke)):
                    log.add("start-lost", f"acknowledged session {session_id} ({invoke.f}) is not in the final state",
                            (completion.index,), session_id=session_id)
            for invoke, completion in stops:
                assert completion is not None
                session_id = invoke.args.get("session_id")
                row = sessions.get(session_id)
                checked += 1
                if row is not None and row.get("status") == "stopped":
                    continue
                key = session_appointment.get(session_id)
                if row is None and (deleted_after(key, 0) if key is not None else invoke.tenant in deleting_tenants):
                    continue  # its appointment may have been deleted (for an unknown start: any of the tenant's)
                state = "missing" if row is None else row.get("status")
                log.add("stop-lost", f"acknowledged stop of session {session_id} but its final state is {state}",
                        (completion.index,), session_id=session_id, final_status=state)

    assigns = history.acknowledged_of(ASSIGN)
    if assigns:
        if snapshot.appointment_assignments is None:
            log.cannot("appointment_assignments not in snapshot")
        else:
            _check_assigns(log, history, assigns, snapshot.appointment_assignments, deleted_after)
            checked += len(assigns)

    calls = history.acknowledged_of(CALL_SUBMIT)
    if calls:
        if snapshot.calls is None:
            log.cannot("calls not in snapshot")
        else:
            call_ids = {row.get("id") for row in snapshot.calls}
            _check_call_links(log, calls, snapshot)
            for invoke, completion in calls:
                assert completion is not None
                call_id = completion.result.get("id")
                checked += 1
                key = (invoke.tenant, invoke.args.get("appointment_id"))
                if call_id is not None and call_id not in call_ids \
                        and not deleted_after(key, write_began(completion, invoke)):
                    log.add("call-lost", f"acknowledged call {call_id} is not in the final state",
                            (completion.index,), call_id=call_id)

    checked += _check_unassigns(log, history, snapshot)
    checked += _check_consents(log, history, snapshot)
    checked += _check_created_appointments(log, history, snapshot, deleted_after)
    answers = _check_appointment_answers(log, history, snapshot)
    stamps = check_created_at(log, history, snapshot)
    return log.verdict(acknowledged_writes_checked=checked, appointment_answers_judged=answers,
                       creation_times_judged=stamps)


def _check_call_links(log: ViolationLog, calls: tuple[Pair, ...], snapshot: Snapshot) -> None:
    """An acknowledged call keeps the appointment or recording session its body named, in its answer and in its
    final row (``call-unlinked``); a final link that is null once that appointment or session is gone is the
    foreign key's ON DELETE SET NULL, not a loss.

    A call's links are what its deletion cascade and its consent check follow (plan F2, F3): a call stored
    without its session outlives the session's appointment. Found 2026-12-05 reading which answer fields no
    rule read: no load sent a call by its session that an app had to accept (the consent probe's were all
    refused), and no rule compared a call's links with what was sent. A call sent by its session alone (args
    ``via`` = session) names only the session; the args' appointment is the load's note of whose it is."""
    rows = _rows_by_id(snapshot.calls or ())
    exists = {"appointment_id": {row.get("id") for row in snapshot.appointments or ()},
              "recording_session_id": {row.get("id") for row in snapshot.recording_sessions or ()}}
    for invoke, completion in calls:
        assert completion is not None
        call_id = completion.result.get("id")
        named = ("recording_session_id",) if invoke.args.get("via") == "session" \
            else ("appointment_id", "recording_session_id")
        for field in named:
            sent = invoke.args.get(field)
            if not isinstance(sent, str):
                continue
            answered = completion.result.get(field)
            row = rows.get(call_id)
            kept = row.get(field) if row is not None else sent
            if answered is not None and str(answered) != sent:
                where, got = "its answer", answered
            elif kept is not None and str(kept) != sent:
                where, got = "its final row", kept
            elif kept is None and row is not None and sent in exists[field]:
                where, got = "its final row", None
            else:
                continue
            log.add("call-unlinked", f"call {call_id} was submitted with {field} {sent}, but {where} has {got}",
                    (invoke.index, completion.index), call_id=call_id, field=field)
            break


def _check_unassigns(log: ViolationLog, history: History, snapshot: Snapshot) -> int:
    """Each acknowledged unassign released the assignments its appointment had when it was first sent.

    An unassign acts from the first request sent under its Idempotency-Key (a retry or a replay under the
    key acted then, not later). An assignment an assign's answer named before that moment was in place
    when the unassign ran; still active at the end, the unassign answered 200 without releasing it (a
    write on a session never committed, say). A released assignment is history (docs/API.md): assigning
    the rep again makes a new one, so the old id active again is the same loss. Assignments no answer
    named (the seed's, a probe's) are not judged: when they were made is not known.
    """
    unassigns = history.acknowledged_of(UNASSIGN)
    if not unassigns:
        return 0
    if snapshot.appointment_assignments is None:
        log.cannot("appointment_assignments not in snapshot")
        return 0
    sent = first_sent(history, UNASSIGN)
    acted: dict[str, tuple[float, int]] = {}  # appointment -> (latest first-sent time of an acknowledged unassign, index)
    for invoke, completion in unassigns:
        assert completion is not None
        key = invoke.args.get("idempotency_key")
        began = sent.get((invoke.tenant, key), invoke.time_ns) if key is not None else invoke.time_ns
        appointment = str(invoke.args.get("appointment_id"))
        if began > acted.get(appointment, (-INF, 0))[0]:
            acted[appointment] = (began, completion.index)
    answered: dict[object, tuple[float, int]] = {}  # assignment id -> (when an answer first named it, that answer)
    for _, completion in history.acknowledged_of(ASSIGN):
        assert completion is not None
        assignment = completion.result.get("id")
        if assignment is not None and completion.time_ns < answered.get(assignment, (INF, 0))[0]:
            answered[assignment] = (completion.time_ns, completion.index)
    checked = 0
    for row in snapshot.appointment_assignments:
        appointment = str(row.get("appointment_id"))
        if appointment not in acted or row.get("id") not in answered:
            continue
        checked += 1
        began, index = acted[appointment]
        named_at, named_by = answered[row.get("id")]
        if row.get("status") != "active" or named_at >= began:
            continue
        log.add("unassign-lost", f"appointment {appointment} was unassigned (answered 2xx), but its assignment "
                f"{row.get('id')} of rep {row.get('rep_id')}, answered before the unassign was sent, is still "
                "active", (named_by, index), appointment_id=appointment, assignment_id=row.get("id"),
                rep_id=row.get("rep_id"))
    return checked


def _check_consents(log: ViolationLog, history: History, snapshot: Snapshot) -> int:
    """Each acknowledged consent grant is in the final state while its appointment is."""
    grants = history.acknowledged_of(CONSENT_GRANT)
    if not grants:
        return 0
    if snapshot.consents is None or snapshot.appointments is None:
        log.cannot("consents or appointments not in snapshot")
        return 0
    kept = {row.get("id") for row in snapshot.consents}
    appointments = {row.get("id") for row in snapshot.appointments}
    checked = 0
    for invoke, completion in grants:
        assert completion is not None
        consent_id, appointment = completion.result.get("id"), invoke.args.get("appointment_id")
        if consent_id is None or appointment not in appointments:
            continue  # no id answered, or its appointment went (with its consents)
        checked += 1
        if consent_id not in kept:
            log.add("consent-lost", f"acknowledged consent {consent_id} of appointment {appointment} is not in the "
                    "final state, though its appointment is", (completion.index,), consent_id=consent_id,
                    appointment_id=appointment)
    return checked


#: A PATCH of an appointment, as a probe fills the path.
_PATCH_PATH = re.compile(r"/appointments/(?P<id>[^/?]+)(?:\?|$)")


def _altered(sent: Mapping[str, Any], row: Mapping[str, Any],
             fields: tuple[str, ...] = ("title", "starts_at", "ends_at")) -> tuple[str, object, object] | None:
    """The first of ``fields`` that ``row`` (a final row, or an answer's) does not keep as ``sent`` had it:
    (field, sent, kept), or None.

    Times are compared as instants (an offset may be written any way; a time with none is UTC), the title
    as text; a field missing from either side, or a time either side does not parse, is not judged."""
    for field in fields:
        value, kept = sent.get(field), row.get(field)
        if value is None or field not in row:
            continue
        if field == "title":
            if kept != value:
                return field, value, kept
            continue
        try:
            moment, held = timestamp_seconds(value), timestamp_seconds(kept)
        except ValueError:
            continue
        if not isinstance(moment, (int, float)):
            continue
        if not isinstance(held, (int, float)) or abs(float(held) - float(moment)) > 1e-3:
            return field, value, kept
    return None


#: The answers describing an appointment: the operation, the result key naming the appointment, the fields
#: it answers (an assignment answers its appointment's window, copied when it was made).
_DESCRIBING = ((APPOINTMENT_CREATE, "id", ("title", "starts_at", "ends_at")),
               (APPOINTMENT_READ, "id", ("title", "starts_at", "ends_at")),
               (UNASSIGN, "id", ("title", "starts_at", "ends_at")),
               (ASSIGN, "appointment_id", ("starts_at", "ends_at")))


def _check_appointment_answers(log: ViolationLog, history: History, snapshot: Snapshot) -> int:
    """Every 2xx answer describing an appointment gives the title and window it was created with (the
    creation's args; for an appointment the run did not create, its final row), as instants.

    A client shows and books what the answers say: a create answered with the window shifted (its
    wall-clock time labelled UTC, say) misleads it even though the stored row is right. A title a probe
    may have patched is not judged; windows never change. Returns the answers judged."""
    expected: dict[object, Mapping[str, Any]] = {}
    for invoke, completion in history.acknowledged_of(APPOINTMENT_CREATE):
        assert completion is not None
        appointment = completion.result.get("id")
        if appointment is not None and appointment not in expected:
            expected[appointment] = invoke.args
    for row in snapshot.appointments or ():
        expected.setdefault(row.get("id"), row)
    patched: set[str] | None = None
    judged = 0
    for f, key, fields in _DESCRIBING:
        for invoke, completion in history.pairs_of(f):
            if completion is None or not 200 <= (completion.status or 0) < 300:
                continue
            appointment = completion.result.get(key)
            sent = expected.get(appointment)
            if sent is None or not any(field in completion.result for field in fields):
                continue
            judged += 1
            altered = _altered(sent, completion.result, fields)
            if altered is not None and altered[0] == "title":
                if patched is None:
                    patched = {match.group("id") for _, match, _ in probe_writes(history, "PATCH", _PATCH_PATH)}
                if appointment in patched:
                    altered = _altered(sent, completion.result, fields[1:])
            if altered is not None:
                log.add("appointment-answered-altered", f"{f} answered appointment {appointment} with {altered[0]} "
                        f"{altered[2]!r}, but it was created with {altered[1]!r}",
                        (invoke.index, completion.index), appointment_id=appointment, field=altered[0])
    return judged


def _check_created_appointments(log: ViolationLog, history: History, snapshot: Snapshot,
                                deleted_after: Callable[[AppointmentKey, float], bool]) -> int:
    """Each acknowledged appointment creation is in the final state unless something may have removed it, with
    the title and window it was created with (unless a probe may have patched it)."""
    created = history.acknowledged_of(APPOINTMENT_CREATE)
    if not created:
        return 0
    if snapshot.appointments is None:
        log.cannot("appointments not in snapshot")
        return 0
    rows = {row.get("id"): row for row in snapshot.appointments}
    patched: set[str] | None = None  # appointments a probe may have patched (built at the first altered row)
    # A retention run, or a deletion of a whole company, removes rows the load did not name one by one.
    sweeping = {invoke.tenant for invoke, _ in history.pairs_of(RETENTION_RUN)}
    whole = {str(completion.result.get("id")) for invoke, completion in history.acknowledged_of(DELETION_REQUEST)
             if invoke.args.get("scope") != "appointment"}
    sweeping |= {invoke.tenant for invoke, _ in history.pairs_of(DELETION_CONFIRM)
                 if str(invoke.args.get("deletion_id")) in whole}
    any_tenant = None in sweeping
    checked = 0
    for invoke, completion in created:
        assert completion is not None
        appointment = completion.result.get("id")
        if appointment is None or appointment in rows:
            checked += appointment is not None
            altered = _altered(invoke.args, rows[appointment]) if appointment is not None else None
            if altered is not None:
                if patched is None:
                    patched = {match.group("id") for _, match, _ in probe_writes(history, "PATCH", _PATCH_PATH)}
                if appointment not in patched:
                    log.add("appointment-altered", f"acknowledged appointment {appointment} was created with "
                            f"{altered[0]} {altered[1]!r}, but the final row has {altered[2]!r}",
                            (invoke.index, completion.index), appointment_id=appointment, field=altered[0])
            continue
        checked += 1
        if any_tenant or invoke.tenant in sweeping \
                or deleted_after((invoke.tenant, appointment), write_began(completion, invoke)):
            continue
        log.add("appointment-lost", f"acknowledged appointment {appointment} is not in the final state",
                (completion.index,), appointment_id=appointment)
    return checked


def _check_assigns(
    log: ViolationLog,
    history: History,
    assigns: tuple[Pair, ...],
    rows: tuple[Row, ...],
    deleted_after: Callable[[AppointmentKey, float], bool],
) -> None:
    # An unassign (or delete) a probe sent and that may have acted releases an assignment as surely
    # as the load's own (seen on docker smoke: a false "released but no unassign followed it").
    undoers = assignment_undoers(history)
    by_id = _rows_by_id(rows)
    by_pair: set[tuple[object, object]] | None = None  # built only if an answer named no assignment id
    for invoke, completion in assigns:
        assert completion is not None
        result = completion.result
        appointment = invoke.args.get("appointment_id")
        assignment_id = result.get("id")
        # Whether the write looks lost first, the deletion that excuses it only then: most writes are not lost.
        if assignment_id is None:
            rep = result.get("rep_id", invoke.args.get("rep_id"))
            if by_pair is None:
                by_pair = {(row.get("appointment_id"), row.get("rep_id")) for row in rows}
            if (appointment, rep) in by_pair:
                continue
            key = (invoke.tenant, appointment)
            if not deleted_after(key, write_began(completion, invoke)):
                log.add("assign-lost", f"acknowledged assignment of {key[1]} to {rep} is not in the final state",
                        (completion.index,), appointment_id=key[1], rep_id=rep)
            continue
        row = by_id.get(assignment_id)
        if row is not None and row.get("status") == "active":
            continue
        key = (invoke.tenant, appointment)
        began = write_began(completion, invoke)
        if deleted_after(key, began):
            continue
        if row is None:
            log.add("assign-lost", f"acknowledged assignment {assignment_id} is not in the final state",
                    (completion.index,), assignment_id=assignment_id)
        elif undoers.get(key, NO_UNDOERS).end_after(began) == INF:
            log.add("assign-lost",
                    f"acknowledged assignment {assignment_id} is {row.get('status')} but no unassign followed it",
                    (completion.index,), assignment_id=assignment_id, final_status=row.get("status"))
