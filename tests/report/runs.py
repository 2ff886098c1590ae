"""Recorded runs for the report tests: realistic histories, real checkers, real run directories.

A run is generated as calls (who, what, when, answer) from a seed, then
replayed through ``HistoryRecorder`` on a fake clock in real-time order,
so invokes and completions interleave as they would under load. Faults
are recorded by the recorder's ``fault`` like the nemesis does. The
``violating`` run adds two acknowledged starts of one appointment with the
same idempotency key (breaking single-active-session and idempotent-replay)
during a fault, and leaves the Shunya tables out of the snapshot (so
job-applied-once is unknown).
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stormproof.harness.history import HistoryRecorder, load_history
from stormproof.harness.invariants import CheckConfig, Snapshot, check_all
from stormproof.harness.report import (
    FaultPlan,
    RunFiles,
    RunInfo,
    ScenarioInfo,
    SLOTargets,
    build_result,
    render_run,
    write_result,
)

S = 1_000_000_000
WALL0 = 1_760_000_000.0

#: The pair of calls the violating run adds: ids and key the tests look for.
DUP_APPOINTMENT = "appt-dup-7f3a"
DUP_KEY = "idem-dup-5c1e"
DUP_SESSIONS = ("sess-dup-aaaa", "sess-dup-bbbb")

PASS_INVARIANTS = ("idempotent-replay", "single-active-session", "slo-error-rate", "slo-latency-p95")
VIOLATION_INVARIANTS = PASS_INVARIANTS + ("job-applied-once",)


@dataclass
class Call:
    start: float
    end: float | None
    process: str
    f: str
    tenant: str
    args: dict[str, Any]
    status: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now / S


def _uuid(rng: random.Random) -> str:
    return "%08x-%04x-4%03x-a%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                              rng.getrandbits(12), rng.getrandbits(48))


def generate_calls(seed: int, *, duration: float, users: int, faulty: tuple[tuple[float, float], ...],
                   timeouts: bool) -> tuple[list[Call], list[dict[str, Any]]]:
    """Calls of ``users`` Locust-like users, and the final recording_sessions rows."""
    rng = random.Random(seed)
    calls: list[Call] = []
    sessions: list[dict[str, Any]] = []
    for user in range(users):
        process, tenant = f"user-{user}", f"c{1 + user % 2}"
        t = 0.05 + rng.random() * 0.2
        while t < duration:
            slow = any(a <= t < b for a, b in faulty)
            latency = rng.lognormvariate(-3.6, 0.4) + (0.18 + rng.random() * 0.08 if slow else 0.0)
            roll = rng.random()
            if roll < 0.2:
                appointment, sid = _uuid(rng), _uuid(rng)
                args = {"appointment_id": appointment, "idempotency_key": _uuid(rng), "payload_fp": f"fp{rng.getrandbits(24):06x}"}
                calls.append(Call(t, t + latency, process, "session.start", tenant, args, 201,
                                  {"id": sid, "appointment_id": appointment, "status": "recording",
                                   "body_sha256": f"{rng.getrandbits(64):016x}"}))
                t += latency + 0.01
                stop = rng.lognormvariate(-3.6, 0.4)
                calls.append(Call(t, t + stop, process, "session.stop", tenant,
                                  {"session_id": sid, "idempotency_key": _uuid(rng), "payload_fp": "stop"}, 200,
                                  {"id": sid, "status": "stopped"}))
                sessions.append({"id": sid, "company_id": tenant, "appointment_id": appointment,
                                 "status": "stopped", "source": "api"})
                t += stop + 0.02
                continue
            f = "appointment.read" if roll < 0.7 else ("call.submit" if roll < 0.85 else "webhook.deliver")
            args = ({"job_id": _uuid(rng), "payload_fp": "hook"} if f == "webhook.deliver"
                    else {"appointment_id": _uuid(rng)})
            if slow and timeouts and rng.random() < 0.45:
                calls.append(Call(t, t + 1.0, process, f, tenant, args, None, {}, "ReadTimeout: timed out"))
                t += 1.02
                continue
            status = 201 if f == "call.submit" else 200
            result = {"id": _uuid(rng)} if f == "call.submit" else {}
            calls.append(Call(t, t + latency, process, f, tenant, args, status, result))
            t += latency + rng.random() * 0.03
    return calls, sessions


def record(path: Path, calls: list[Call], faults: list[tuple[float, str, str, str, dict[str, Any]]]) -> None:
    """Replay calls and fault events through a HistoryRecorder in time order."""
    clock = FakeClock()
    events: list[tuple[float, int, int, str]] = []
    for number, call in enumerate(calls):
        events.append((call.start, 1, number, "invoke"))
        if call.end is not None:
            events.append((call.end, 0, number, "complete"))
    for number, _ in enumerate(faults):
        events.append((faults[number][0], 2, number, "fault"))
    heapq.heapify(events)
    invokes = {}
    with HistoryRecorder(path, clock=clock, wall_clock=clock.wall, origin_ns=0) as recorder:
        while events:
            at, _, number, what = heapq.heappop(events)
            clock.now = int(at * S)
            if what == "fault":
                _, fault, phase, target, params = faults[number]
                recorder.fault(fault, phase, target, params)
            elif what == "invoke":
                call = calls[number]
                invokes[number] = recorder.invoke(call.process, call.f, tenant=call.tenant, args=call.args)
            else:
                call = calls[number]
                recorder.complete(invokes[number], status=call.status, result=call.result, error=call.error)


@dataclass(frozen=True)
class RecordedRun:
    run_dir: Path
    scenario: str
    violating: bool


def make_run(run_dir: Path, *, scenario: str, seed: int, violating: bool, started_at: str,
             duration: float = 24.0, users: int = 5) -> RecordedRun:
    """Generate, record, check, write result.json and render one run directory."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fault_plan = [FaultPlan(8.0, 6.0, "latency", "app", {"latency_ms": 200, "jitter_ms": 40})]
    faults: list[tuple[float, str, str, str, dict[str, Any]]] = [
        (8.0, "latency", "start", "app", {"latency_ms": 200, "jitter_ms": 40}),
        (14.0, "latency", "stop", "app", {"latency_ms": 200, "jitter_ms": 40}),
    ]
    if violating:
        fault_plan.append(FaultPlan(16.0, 3.0, "pause", "worker", {"signal": "SIGSTOP"}))
        faults += [(16.0, "pause", "start", "worker", {"signal": "SIGSTOP"})]  # healed only by the final heal
        faults += [(duration + 0.5, "pause", "stop", "*", {"final": True})]
    windows = ((8.0, 14.0),)
    calls, sessions = generate_calls(seed, duration=duration, users=users, faulty=windows, timeouts=violating)
    if violating:
        for process, sid, start, end in (("user-1", DUP_SESSIONS[0], 10.20, 10.46),
                                         ("user-3", DUP_SESSIONS[1], 10.25, 10.52)):
            calls.append(Call(start, end, process, "session.start", "c2",
                              {"appointment_id": DUP_APPOINTMENT, "idempotency_key": DUP_KEY, "payload_fp": "fp-dup"},
                              201, {"id": sid, "appointment_id": DUP_APPOINTMENT, "status": "recording",
                                    "body_sha256": "feed" + sid[-4:]}))
            sessions.append({"id": sid, "company_id": "c2", "appointment_id": DUP_APPOINTMENT,
                             "status": "recording", "source": "api"})
        # Around them: a read of the appointment and a stop that was refused (so it stopped nothing).
        calls.append(Call(10.30, 10.38, "user-2", "appointment.read", "c2", {"appointment_id": DUP_APPOINTMENT}, 200,
                          {"id": DUP_APPOINTMENT, "status": "scheduled"}))
        calls.append(Call(10.60, 10.71, "user-1", "session.stop", "c2",
                          {"session_id": DUP_SESSIONS[0], "idempotency_key": "idem-stop-9d", "payload_fp": "stop"},
                          409, {"detail": "request in flight"}))
    history_path = run_dir / "history.jsonl"
    record(history_path, calls, faults)
    history = load_history(history_path)

    config = CheckConfig(error_rate_max=0.01, latency_p95_ms=300.0)
    snapshot = Snapshot.build({"recording_sessions": sessions}, config=config)
    invariants = VIOLATION_INVARIANTS if violating else PASS_INVARIANTS
    verdicts = check_all(history, snapshot, invariants)

    (run_dir / "logs").mkdir(exist_ok=True)
    (run_dir / "logs" / "app.log").write_text("INFO app started\n", encoding="utf-8")
    (run_dir / "locust").mkdir(exist_ok=True)
    (run_dir / "locust" / "stats.json").write_text("[]\n", encoding="utf-8")
    weights = {"appointment.read": 50.0, "session.start": 20.0, "call.submit": 15.0, "webhook.deliver": 15.0}
    scenario_info = ScenarioInfo(
        name=scenario, description=f"{scenario}: sessions started and stopped under a latency fault",
        seed=seed, duration_s=duration, users=users, spawn_rate=5.0, weights=weights, faults=tuple(fault_plan),
        invariants=invariants, slo=SLOTargets(config.error_rate_max, config.latency_p95_ms))
    weakenings = ("session-lock",) if violating else ()
    run = RunInfo(
        id=run_dir.name, started_at=started_at, finished_at=started_at.replace(":00Z", ":30Z"),
        duration_s=duration + 1.0, backend="local", weakenings=weakenings,
        command=f"stormproof run {scenario} --seed {seed}" + (" --weaken session-lock" if violating else ""),
        version="0.1.0", commit="0123456789abcdef0123456789abcdef01234567", host="ci-runner-1")
    files = RunFiles(history="history.jsonl", locust_stats="locust/stats.json", logs=("logs/app.log",))
    result = build_result(scenario_info, run, verdicts, history, files=files)
    write_result(run_dir, result)
    render_run(run_dir)
    return RecordedRun(run_dir, scenario, violating)
