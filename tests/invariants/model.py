"""A small concurrent model of the backend that produces realistic histories and final states.

Clients (processes) issue operations one after another; each operation takes
effect at a random point between its invoke and its completion (its
linearization point), against a model server that follows the API contract.
Some answers are lost (``info``): the effect applied or not. Optional bugs
make the server break one rule, so tests can check the checkers catch it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from stormproof.harness.history import History, Op
from stormproof.harness.invariants import Snapshot

MS = 1_000_000
BUGS = ("double-start", "double-assign", "no-idempotency", "lost-stop")


@dataclass
class _Planned:
    process: str
    tenant: str
    f: str
    args: dict[str, Any]
    invoke_ns: int
    complete_ns: int
    effect_ns: int
    lost: bool  # the answer never reaches the client (info)
    applies_if_lost: bool
    status: int | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelRun:
    history: History
    snapshot: Snapshot
    bug_manifested: bool


class _Server:
    def __init__(self, rng: random.Random, bug: str | None) -> None:
        self.rng = rng
        self.bug = bug
        self.sessions: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.keys: dict[tuple[str, str], tuple[tuple[str, str], int, dict[str, Any]]] = {}
        self.counter = 0
        self.bug_manifested = False
        # keys of acknowledged-but-unwritten stops whose answer was lost: a replay delivers the lie later
        self.unapplied_stops: set[tuple[str, str]] = set()
        self.replayed_unapplied_stop = False
        self.stop_unwritten = False

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def apply(self, op: _Planned) -> tuple[int, dict[str, Any]]:
        key = op.args.get("idempotency_key")
        fp = (op.f, op.args.get("payload_fp", ""))
        if key is not None:
            stored = self.keys.get((op.tenant, key))
            if stored is not None:
                if stored[0] != fp:
                    return 422, {}
                if self.bug != "no-idempotency":
                    self.replayed_unapplied_stop = (op.tenant, key) in self.unapplied_stops
                    return stored[1], {**stored[2], "replayed": True}
                self.bug_manifested = True
        status, result = getattr(self, op.f.replace(".", "_"))(op)
        result = {**result, "company_ids_seen": frozenset((op.tenant,)), "body_sha256": hash_of(status, result)}
        if key is not None and status < 500:
            self.keys[(op.tenant, key)] = (fp, status, result)
        return status, {**result, "replayed": False}

    def active_session(self, tenant: str, appointment: str) -> dict[str, Any] | None:
        for session in self.sessions.values():
            if (session["company_id"], session["appointment_id"]) == (tenant, appointment) and \
                    session["status"] == "recording":
                return session
        return None

    def session_start(self, op: _Planned) -> tuple[int, dict[str, Any]]:
        appointment = op.args["appointment_id"]
        active = self.active_session(op.tenant, appointment)
        if active is not None:
            if self.bug != "double-start":
                return 409, {"active_session_id": active["id"]}
            self.bug_manifested = True
        session_id = self.new_id("s")
        self.sessions[session_id] = {"id": session_id, "company_id": op.tenant, "appointment_id": appointment,
                                     "started_by": op.process, "status": "recording", "source": "sessions",
                                     "created_at": op.effect_ns / 1e9, "stopped_at": None}
        return 201, {"id": session_id, "appointment_id": appointment, "status": "recording"}

    def session_stop(self, op: _Planned) -> tuple[int, dict[str, Any]]:
        session = self.sessions.get(op.args["session_id"])
        if session is None or session["company_id"] != op.tenant:
            return 404, {}
        if self.bug == "lost-stop" and session["status"] == "recording" and self.rng.random() < 0.5:
            self.stop_unwritten = True  # acknowledges the stop but never writes it
        else:
            session["status"] = "stopped"
        return 200, {"id": session["id"], "status": "stopped"}

    def appointment_assign(self, op: _Planned) -> tuple[int, dict[str, Any]]:
        appointment, rep = op.args["appointment_id"], op.args["rep_id"]
        for assignment in self.assignments.values():
            if assignment["status"] != "active" or assignment["company_id"] != op.tenant:
                continue
            if assignment["appointment_id"] == appointment:
                if assignment["rep_id"] == rep:
                    return 200, {"id": assignment["id"], "appointment_id": appointment, "rep_id": rep}
                if self.bug != "double-assign":
                    return 409, {}
                self.bug_manifested = True
        assignment_id = self.new_id("as")
        self.assignments[assignment_id] = {
            "id": assignment_id, "company_id": op.tenant, "appointment_id": appointment, "rep_id": rep,
            "starts_at": WINDOWS[appointment][0], "ends_at": WINDOWS[appointment][1], "status": "active",
            "created_at": op.effect_ns / 1e9, "released_at": None,
        }
        return 200, {"id": assignment_id, "appointment_id": appointment, "rep_id": rep}

    def appointment_unassign(self, op: _Planned) -> tuple[int, dict[str, Any]]:
        for assignment in self.assignments.values():
            if (assignment["company_id"], assignment["appointment_id"], assignment["status"]) == \
                    (op.tenant, op.args["appointment_id"], "active"):
                assignment["status"] = "released"
                assignment["released_at"] = op.effect_ns / 1e9
        return 200, {"id": op.args["appointment_id"]}


def hash_of(status: int, result: dict[str, Any]) -> str:
    return hashlib.sha256(repr((status, sorted((k, str(v)) for k, v in result.items()))).encode()).hexdigest()


#: Appointment windows (unix seconds); different appointments never overlap,
#: so a rep may hold several (rep double-booking is the final-state check's case).
WINDOWS = {f"{tenant}-a{i}": (1000.0 * i, 1000.0 * i + 500.0) for tenant in ("c1", "c2") for i in range(1, 4)}


def generate(seed: int, *, n_ops: int = 40, processes: int = 4, bug: str | None = None,
             info_rate: float = 0.15) -> ModelRun:
    """A history of about ``n_ops`` operations and the final state it leads to."""
    rng = random.Random(seed)
    planned: list[_Planned] = []
    clock = {f"p{i}": rng.randrange(0, 5) * MS for i in range(processes)}
    retry_of: dict[str, _Planned] = {}
    for n in range(n_ops):
        process = rng.choice(sorted(clock))
        tenant = "c1" if process in ("p0", "p1") else "c2"
        appointment = f"{tenant}-a{rng.randrange(1, 4)}"
        start = clock[process] + rng.randrange(0, 3) * MS
        duration = rng.randrange(1, 40) * MS
        kind = rng.random()
        previous = retry_of.get(process)
        if previous is not None and kind < 0.2:
            f, args = previous.f, dict(previous.args)  # a retry with the same key and payload
        elif kind < 0.45:
            f, args = "session.start", {"appointment_id": appointment, "idempotency_key": f"k{n}",
                                        "payload_fp": f"start:{appointment}"}
        elif kind < 0.65:
            f, args = "session.stop", {"session_id": f"s{rng.randrange(1, n + 2)}", "idempotency_key": f"k{n}",
                                       "payload_fp": f"stop:{n}"}
        elif kind < 0.85:
            f, args = "appointment.assign", {"appointment_id": appointment, "rep_id": rng.choice(("r1", "r2"))}
        else:
            f, args = "appointment.unassign", {"appointment_id": appointment}
        lost = rng.random() < info_rate
        op = _Planned(process, tenant, f, args, start, start + duration,
                      start + rng.randrange(0, duration + 1), lost, rng.random() < 0.5)
        planned.append(op)
        if "idempotency_key" in args:
            retry_of[process] = op
        clock[process] = start + duration
    server = _Server(rng, bug)
    lied_about: set[str] = set()
    for op in sorted(planned, key=lambda o: (o.effect_ns, o.invoke_ns)):
        if op.lost and not op.applies_if_lost:
            continue
        server.replayed_unapplied_stop = server.stop_unwritten = False
        op.status, op.result = server.apply(op)
        if server.stop_unwritten and op.lost:
            server.unapplied_stops.add((op.tenant, op.args["idempotency_key"]))  # nobody was told...
        elif server.stop_unwritten or (server.replayed_unapplied_stop and not op.lost):
            lied_about.add(op.args["session_id"])  # ...until a client is told "stopped"
    if bug == "lost-stop":
        # visible only if the session is still not stopped at the end
        server.bug_manifested = any(server.sessions[s]["status"] != "stopped" for s in lied_about)
    return ModelRun(_emit(planned), _snapshot(server), server.bug_manifested)


def _emit(planned: list[_Planned]) -> History:
    events: list[tuple[int, int, int, _Planned]] = []
    for number, op in enumerate(planned):
        events.append((op.invoke_ns, 0, number, op))
        events.append((op.complete_ns, 1, number, op))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    ops: list[Op] = []
    invoke_at: dict[int, int] = {}
    last = len(events) - 1
    for position, (time_ns, phase, number, op) in enumerate(events):
        index = len(ops)
        if phase == 0:
            invoke_at[number] = index
            ops.append(Op(index, "invoke", op.process, op.f, op.tenant, op.args, time_ns=time_ns))
            continue
        if op.lost:
            if position == last:
                continue  # the run ended before this answer: an invoke without completion
            ops.append(Op(index, "info", op.process, op.f, op.tenant, op.args, None, {}, "TimeoutError",
                          time_ns, 0.0, invoke_at[number]))
            continue
        assert op.status is not None
        op_type = "ok" if op.status < 300 else "fail"
        ops.append(Op(index, op_type, op.process, op.f, op.tenant, op.args, op.status, op.result, None,
                      time_ns, 0.0, invoke_at[number]))
    return History(ops)


def _snapshot(server: _Server) -> Snapshot:
    appointments = []
    for appointment, (starts, ends) in WINDOWS.items():
        tenant = appointment.split("-")[0]
        if True:
            active = [a for a in server.assignments.values() if a["status"] == "active"
                      and (a["company_id"], a["appointment_id"]) == (tenant, appointment)]
            appointments.append({"id": appointment, "company_id": tenant, "title": appointment, "starts_at": starts,
                                 "ends_at": ends, "status": "scheduled",
                                 "assigned_rep_id": active[-1]["rep_id"] if active else None})
    return Snapshot(
        appointments=tuple(appointments),
        appointment_assignments=tuple(server.assignments.values()),
        recording_sessions=tuple(server.sessions.values()),
        calls=(),
    )
