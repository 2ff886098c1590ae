"""Benchmark the invariant checkers on a large realistic history, in one run.

Generates a valid history of N ops (default 1,000,000: sessions started and
stopped, assignments, reads, calls, webhook deliveries with duplicates,
cross-tenant probes, idempotent replays, lost answers) from 200 concurrent
clients of 20 tenants, and the matching final snapshot and metrics. Times
each checker and all of them together against a baseline pass that only
iterates the history, and prints ops/s side by side. Then seeds a double
start and shows that single-active-session finds it, with the op indices.

With ``--sizes`` it measures scaling instead: for each size, a fresh
process generates the history and times ``check_all`` (CPU seconds and
wall), for this tree and, with ``--baseline DIR`` (another checkout of the
project), for the baseline too, taking turns, up to ``--baseline-max`` ops.

    .venv/bin/python bench/bench_checkers.py [--ops N] [--seed S]
    .venv/bin/python bench/bench_checkers.py --sizes 100000,1000000,5000000 [--baseline DIR] [--baseline-max N]
        [--only baseline|this]
    .venv/bin/python bench/bench_checkers.py --paired 300000 --rounds 6 --baseline DIR

``--paired N`` runs both trees at the same time, one process each, each timing ``--rounds`` runs of
``check_all`` (CPU seconds) on its own copy of the same N-op history: on a machine shared with other
work, a busy moment then slows both alike, where one tree after the other can be off by 20% either way.

Every tree's verdicts on each size are compared to the last detail (a digest of ``verdict_to_dict`` of
each); the script exits 1 when they differ. The snapshot carries a run's config (``RUN_CONFIG``).
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stormproof.harness.history import History, Op  # noqa: E402
from stormproof.harness.invariants import (  # noqa: E402
    CheckConfig, Snapshot, check_all, get_checker, names, run_checker)

MS = 1_000_000
#: What a run the harness starts gives the checkers: the app's default key TTL (24 h), and a per-tenant
#: API limit as noisy-tenant sets one (above what the generated tenants send, about 1,700 requests a
#: second each), so that the rate and TTL rules do their work on every op, as in a real run.
RUN_CONFIG = CheckConfig(idempotency_ttl_s=24 * 3600.0, rate_limit_per_s=2000.0, rate_limit_burst=400.0)


class _Generator:
    def __init__(self, n_ops: int, seed: int, clients: int = 200, tenants: int = 20) -> None:
        self.rng = random.Random(seed)
        self.n_ops = n_ops
        self.ops: list[Op] = []
        self.ids = 0
        self.clients = [
            {"name": f"user-{c}", "tenant": f"c{c % tenants}",
             "appointments": [f"c{c % tenants}-a{c}-{k}" for k in range(8)], "last_keyed": None}
            for c in range(clients)
        ]
        self.active_session: dict[str, tuple[str, int]] = {}  # appointment -> (session, ack index)
        self.assigned: dict[str, tuple[str, str]] = {}  # appointment -> (assignment id, rep)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.analyses: list[dict[str, Any]] = []
        self.replays = 0

    def new_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}{self.ids}"

    def plan(self, client: dict[str, Any]) -> tuple[str, dict[str, Any], int | None, dict[str, Any]]:
        """Choose the client's next op and decide its answer (the model applies it now)."""
        rng, tenant = self.rng, client["tenant"]
        appointment = rng.choice(client["appointments"])
        roll = rng.random()
        seen = {"company_ids_seen": frozenset((tenant,))}
        if client["last_keyed"] is not None and roll < 0.05:
            f, args, status, result = client["last_keyed"]
            self.replays += 1
            return f, args, status, {**result, "replayed": True}
        if roll < 0.30:
            key = self.new_id("k")
            active = self.active_session.get(appointment)
            if active is None:
                session = self.new_id("s")
                self.sessions[session] = {"id": session, "company_id": tenant, "appointment_id": appointment,
                                          "started_by": client["name"], "status": "recording", "source": "sessions"}
                answer = ("session.start", {"appointment_id": appointment, "idempotency_key": key,
                                            "payload_fp": f"start:{appointment}"}, 201,
                          {"id": session, "appointment_id": appointment, "body_sha256": session, **seen})
            else:
                self.sessions[active[0]]["status"] = "stopped"
                del self.active_session[appointment]
                answer = ("session.stop", {"session_id": active[0], "idempotency_key": key,
                                           "payload_fp": f"stop:{active[0]}"}, 200,
                          {"id": active[0], "status": "stopped", "body_sha256": "x" + active[0], **seen})
            client["last_keyed"] = answer
            return answer
        if roll < 0.45:
            held = self.assigned.pop(appointment, None)
            if held is not None:
                self.assignments[held[0]]["status"] = "released"
                return "appointment.unassign", {"appointment_id": appointment}, 200, {"id": appointment, **seen}
            rep = f"{tenant}-r{rng.randrange(1000)}"
            assignment = self.new_id("as")
            self.assignments[assignment] = {"id": assignment, "company_id": tenant, "appointment_id": appointment,
                                            "rep_id": rep, "status": "active", "starts_at": float(self.ids),
                                            "ends_at": self.ids + 0.5}
            self.assigned[appointment] = (assignment, rep)
            return "appointment.assign", {"appointment_id": appointment, "rep_id": rep}, 200, \
                {"id": assignment, "rep_id": rep, **seen}
        if roll < 0.75:
            if rng.random() < 0.005:
                return "appointment.read", {"appointment_id": appointment}, None, {}  # lost answer
            # What the model holds now: no write of it is in flight unless one began before (reads-current then
            # takes the read as concurrent with it, not judged).
            held = self.assigned.get(appointment)
            return "appointment.read", {"appointment_id": appointment}, 200, \
                {**seen, "assigned_rep_id": held[1] if held else None}
        if roll < 0.85:
            call = self.new_id("call")
            self.calls.append({"id": call, "company_id": tenant, "appointment_id": appointment, "status": "submitted"})
            return "call.submit", {"appointment_id": appointment}, 201, {"id": call, **seen}
        if roll < 0.95 and self.calls:
            call = self.calls[-1]
            job = f"job-{call['id']}"
            if not self.analyses or self.analyses[-1]["shunya_job_id"] != job:
                self.analyses.append({"id": self.new_id("an"), "company_id": call["company_id"], "call_id": call["id"],
                                      "shunya_job_id": job, "output_hash": f"h-{job}", "applied_by": "webhook"})
            return "webhook.deliver", {"job_id": job}, 200, {}  # a later delivery of the same job is a duplicate
        other = self.clients[(self.clients.index(client) + 1) % len(self.clients)]
        return "probe.cross_tenant", {"target_tenant": other["tenant"], "target_id": other["appointments"][0]}, \
            404, seen

    def run(self) -> tuple[History, Snapshot]:
        rng = self.rng
        now = 0
        pending: list[tuple[int, int, int, int | None, dict[str, Any]]] = []
        idle = list(range(len(self.clients)))
        ops = self.ops
        while len(ops) + 2 * len(pending) < self.n_ops - 1 or pending:
            if pending and (not idle or pending[0][0] <= now or len(ops) + 2 * len(pending) >= self.n_ops - 1):
                due, _, invoke_index, status, result = heapq.heappop(pending)
                now = max(now, due)
                invoke = ops[invoke_index]
                op_type = "info" if status is None else ("ok" if status < 300 else "fail")
                ops.append(Op(len(ops), op_type, invoke.process, invoke.f, invoke.tenant, invoke.args, status, result,
                              "ReadTimeout" if status is None else None, now, now / 1e9, invoke_index))
                idle.append(int(invoke.process.split("-")[1]))
                continue
            client = self.clients[idle.pop(rng.randrange(len(idle)))]
            now += rng.randrange(0, 60_000)
            f, args, status, result = self.plan(client)
            index = len(ops)
            ops.append(Op(index, "invoke", client["name"], f, client["tenant"], args, time_ns=now, wall=now / 1e9))
            latency = int(rng.lognormvariate(2.7, 0.5) * MS)
            heapq.heappush(pending, (now + latency, index, index, status, result))
            if f == "session.start" and not result.get("replayed"):
                self.active_session[args["appointment_id"]] = (result["id"], -1)
        history = History(ops)
        metrics = {
            'webhook_dedupe_misses_total{source="webhook"}': float(len(self.analyses)),
            'idempotency_keys_total{outcome="replay"}': float(self.replays),
            'recording_sessions_started_total{source="sessions"}': float(len(self.sessions)),
        }
        appointments = tuple(
            {"id": a, "company_id": c["tenant"], "assigned_rep_id": self.assigned[a][1] if a in self.assigned else None}
            for c in self.clients for a in c["appointments"])
        snapshot = Snapshot(
            appointments=appointments,
            appointment_assignments=tuple(self.assignments.values()),
            recording_sessions=tuple(self.sessions.values()),
            calls=tuple(self.calls),
            shunya_jobs=(),
            call_analyses=tuple(self.analyses),
            task_records=tuple({"task_id": f"t{i}", "name": "poll", "company_id": a["company_id"], "state": "succeeded",
                                "attempts": 1} for i, a in enumerate(self.analyses)),
            dead_letters=(),
            metrics=metrics,
            expected_outputs={a["shunya_job_id"]: a["output_hash"] for a in self.analyses},
            completed_jobs=frozenset(a["shunya_job_id"] for a in self.analyses),
            config=RUN_CONFIG,
        )
        return history, snapshot


def _baseline(history: History) -> int:
    count = 0
    for op in history:
        if op.type == "ok":
            count += 1
    return count


def _seed_double_start(history: History) -> tuple[History, int, int]:
    """Append a second start, acknowledged, on an appointment whose session is active and never stopped."""
    stopped = {i.args["session_id"] for i, _ in history.pairs_of("session.stop")}
    for invoke, completion in reversed(history.pairs_of("session.start")):
        if completion is not None and completion.type == "ok" and completion.result["id"] not in stopped:
            break
    else:
        raise SystemExit("no active session to double-start")
    ops = list(history)
    t = ops[-1].time_ns + MS
    bad_invoke = Op(len(ops), "invoke", "user-bug", "session.start", invoke.tenant, invoke.args, time_ns=t)
    bad_ok = Op(len(ops) + 1, "ok", "user-bug", "session.start", invoke.tenant, invoke.args, 201,
                {"id": "s-seeded", "appointment_id": invoke.args["appointment_id"]}, None, t + MS, 0.0, len(ops))
    return History(ops + [bad_invoke, bad_ok]), completion.index, bad_ok.index


def _seed_violations(history: History, snapshot: Snapshot) -> tuple[History, Snapshot]:
    """Append one violation of each rule the shared answers pass and tenant-isolation's final state judge.

    Foreign data and a foreign row in an answer, a probe answered 200, a key reused for another payload,
    a tenant over its rate limit for a second, a row naming another tenant's row, a probe's marker in
    another tenant's row: the trees must find the same violations, not only agree that all is valid.
    """
    import dataclasses

    ops = list(history)
    t = ops[-1].time_ns + MS
    foreign = "c1-a1-0"  # an appointment of tenant c1 (the generator's naming)

    def pair(f: str, tenant: str, args: dict[str, Any], status: int, result: dict[str, Any]) -> None:
        nonlocal t
        invoke = Op(len(ops), "invoke", "user-seeded", f, tenant, args, time_ns=t)
        ops.append(invoke)
        t += 1000
        ops.append(Op(len(ops), "ok" if status < 300 else "fail", "user-seeded", f, tenant, args, status, result,
                      None, t, 0.0, invoke.index))

    pair("appointment.read", "c0", {"appointment_id": "c0-a0-0"}, 200, {"company_ids_seen": frozenset(("c0", "c1"))})
    pair("appointment.read", "c0", {"appointment_id": foreign}, 200, {"company_ids_seen": frozenset(("c0",))})
    pair("probe.cross_tenant", "c0", {"target_tenant": "c1", "target_id": foreign, "probe_id": "seeded"}, 200, {})
    for fp in ("start:one", "start:other"):
        pair("session.start", "c0", {"appointment_id": "c0-a0-1", "idempotency_key": "k-seeded", "payload_fp": fp},
             201, {"id": f"s-{fp}", "appointment_id": "c0-a0-1"})
    for _ in range(int(RUN_CONFIG.rate_limit_per_s * 1.5 + RUN_CONFIG.rate_limit_burst) + 10):
        pair("appointment.read", "c2", {"appointment_id": "c2-a2-0"}, 200, {})
    sessions = snapshot.recording_sessions + (
        {"id": "s-seeded", "company_id": "c0", "appointment_id": foreign, "status": "stopped", "source": "sessions"},)
    calls = snapshot.calls + ({"id": "call-seeded", "company_id": "c1", "appointment_id": foreign,
                               "status": "sp-probe-c0-seeded"},)
    return History(ops), dataclasses.replace(snapshot, recording_sessions=sessions, calls=calls)


#: The start of each child: import ``stormproof`` from the tree in argv[1] and the bench from argv[2].
_TREE_IMPORT = r"""
import hashlib, json, statistics, sys, time, types
# The repository's folders install as stormproof.<folder> (setup.py), so putting a tree on sys.path
# is not enough: the editable install would still answer `import stormproof` with this tree. Make
# `stormproof` the given tree's folder, and check that it is the one imported.
package = types.ModuleType("stormproof")
package.__path__ = [sys.argv[1]]
sys.modules["stormproof"] = package
import stormproof.harness
if not stormproof.harness.__file__.startswith(sys.argv[1].rstrip("/") + "/"):
    raise SystemExit(f"imported {stormproof.harness.__file__}, not the tree {sys.argv[1]}")
sys.path.insert(0, sys.argv[2])
from bench_checkers import _Generator
"""

_SCALE_CHILD = _TREE_IMPORT + r"""
from stormproof.harness.history import History
from stormproof.harness.invariants import check_all, verdict_to_dict
history, snapshot = _Generator(int(sys.argv[3]), int(sys.argv[4])).run()
fresh = History(history.ops)
cpu, wall = time.process_time(), time.perf_counter()
verdicts = check_all(fresh, snapshot)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
# Every verdict to the last detail (status, each violation kept and the count of all, summary), not
# only the statuses: the two trees must say exactly the same thing about the same history.
full = json.dumps([verdict_to_dict(v) for v in verdicts], sort_keys=True, default=repr)
seeded = ""
if len(history) <= 1_000_000:  # and on the same history with one violation of each rule seeded (not timed)
    from bench_checkers import _seed_violations
    bad = check_all(*_seed_violations(history, snapshot))
    seeded = json.dumps([verdict_to_dict(v) for v in bad], sort_keys=True, default=repr)
    bad = sorted((v.invariant, v.status, len(v.violations)) for v in bad if v.status == "invalid")
print(json.dumps({"ops": len(history), "cpu": cpu, "wall": wall,
                  "verdicts": sorted((v.invariant, v.status, len(v.violations)) for v in verdicts),
                  "seeded": bad if seeded else None,
                  "digest": hashlib.sha256((full + seeded).encode()).hexdigest()}))
"""


_PAIRED_CHILD = _TREE_IMPORT + r"""
from stormproof.harness.history import History
from stormproof.harness.invariants import check_all
history, snapshot = _Generator(int(sys.argv[3]), int(sys.argv[4])).run()
cpus = []
for _ in range(int(sys.argv[5])):
    fresh = History(history.ops)
    cpu = time.process_time()
    check_all(fresh, snapshot)
    cpus.append(time.process_time() - cpu)
    del fresh
print(json.dumps({"ops": len(history), "cpus": cpus}))
"""


def paired(size: int, rounds: int, seed: int, baseline: Path) -> None:
    import os
    import statistics
    import subprocess

    trees = [("baseline", baseline.resolve()), ("this tree", REPO)]
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    children = [subprocess.Popen([sys.executable, "-c", _PAIRED_CHILD, str(tree), str(REPO / "bench"), str(size),
                                  str(seed), str(rounds)], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONHASHSEED": "0"}) for _, tree in trees]
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"a child failed ({child.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    medians = []
    for (name, _), r in zip(trees, results):
        median = statistics.median(r["cpus"])
        medians.append(median)
        print(f"{r['ops']:>11,}  {name:10} check_all CPU s: median {median:.2f} ({r['ops'] / median:,.0f} ops/s, "
              f"{median / r['ops'] * 1e6:.2f} us/op), min {min(r['cpus']):.2f}; rounds "
              + " ".join(f"{x:.2f}" for x in r["cpus"]))
    print(f"this tree / baseline (medians): {medians[1] / medians[0]:.3f}")


def scaling(sizes: list[int], seed: int, baseline: Path | None, baseline_max: int, only: str | None) -> None:
    import os
    import subprocess

    trees = ([("baseline", baseline.resolve())] if baseline else []) + [("this tree", REPO)]
    if only is not None:
        trees = [tree for tree in trees if tree[0].startswith(only)]
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'ops':>11}  {'tree':10}{'CPU s':>8}{'wall s':>8}{'ops/s (CPU)':>13}{'us/op':>7}  verdicts")
    differ = []
    for size in sizes:
        seen: dict[str, str] = {}
        for name, tree in trees:
            if name == "baseline" and size > baseline_max:
                continue
            # The same string hashes in both children, so that set orders (and any text built from them) agree.
            out = subprocess.run([sys.executable, "-c", _SCALE_CHILD, str(tree), str(REPO / "bench"), str(size),
                                  str(seed)], capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONHASHSEED": "0"})
            r = json.loads(out.stdout.strip().splitlines()[-1])
            seen[name] = r["digest"]
            counts = ", ".join(f"{i} {s}" + (f" ({n})" if n else "") for i, s, n in r["verdicts"] if s != "valid")
            same = len(seen) == 2 and len(set(seen.values())) == 1
            print(f"{r['ops']:>11,}  {name:10}{r['cpu']:>8.2f}{r['wall']:>8.2f}{r['ops'] / r['cpu']:>13,.0f}"
                  f"{r['cpu'] / r['ops'] * 1e6:>7.2f}  " + ("identical to the baseline's, " if same else "")
                  + f"sha256 {r['digest'][:12]}; all valid but: {counts or 'none'}")
            if r["seeded"]:
                print(f"{'':13}seeded: " + ", ".join(f"{i} {s} ({n})" for i, s, n in r["seeded"]))
        if len(set(seen.values())) > 1:
            differ.append(size)
            print(f"  VERDICTS DIFFER between the trees at {size:,} ops")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if differ:
        raise SystemExit(f"verdicts differ from the baseline's at {differ}: a checker changed what it says")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sizes", help="comma-separated op counts: measure scaling instead")
    parser.add_argument("--baseline", type=Path, help="another checkout of the project to compare with")
    parser.add_argument("--baseline-max", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("baseline", "this"), help="with --sizes: measure one tree only")
    parser.add_argument("--paired", type=int, metavar="N", help="both trees at once on N ops (needs --baseline)")
    parser.add_argument("--rounds", type=int, default=5, help="with --paired: check_all runs per tree")
    options = parser.parse_args()
    if options.paired:
        if options.baseline is None:
            parser.error("--paired compares with a baseline: give --baseline DIR (another checkout of the project)")
        paired(options.paired, options.rounds, options.seed, options.baseline)
        return
    if options.sizes:
        scaling([int(x) for x in options.sizes.split(",")], options.seed, options.baseline, options.baseline_max,
                options.only)
        return
    started = time.perf_counter()
    history, snapshot = _Generator(options.ops, options.seed).run()
    print(f"generated {len(history):,} ops ({len(history.pairs()):,} pairs, {len(history.fs)} operations) "
          f"in {time.perf_counter() - started:.1f} s")
    print(f"{'':28}{'seconds':>9}{'ops/s':>15}  verdict")
    started = time.perf_counter()
    _baseline(history)
    base = time.perf_counter() - started
    print(f"{'baseline: iterate once':28}{base:>9.3f}{len(history) / base:>15,.0f}")
    fresh = History(history.ops)
    started = time.perf_counter()
    fresh.pairs_of("session.start")  # the shared views every checker reuses, built once
    took = time.perf_counter() - started
    print(f"{'history views (pairs)':28}{took:>9.3f}{len(history) / took:>15,.0f}")
    for name in names():
        started = time.perf_counter()
        verdict = run_checker(get_checker(name), fresh, snapshot)
        took = time.perf_counter() - started
        print(f"{name:28}{took:>9.3f}{len(history) / took:>15,.0f}  {verdict.status}"
              + (f" ({verdict.error})" if verdict.error else ""))
    fresh = History(history.ops)
    started = time.perf_counter()
    verdicts = check_all(fresh, snapshot)
    took = time.perf_counter() - started
    statuses = {v.status for v in verdicts}
    print(f"{'all checkers (check_all)':28}{took:>9.3f}{len(history) / took:>15,.0f}  {sorted(statuses)}")

    seeded, first_ack, bad_ack = _seed_double_start(history)
    started = time.perf_counter()
    (verdict,) = check_all(seeded, snapshot, ["single-active-session"])
    took = time.perf_counter() - started
    print(f"seeded double start (acks at ops {first_ack} and {bad_ack}): single-active-session -> "
          f"{verdict.status} in {took:.2f} s; violation ops {[v.ops for v in verdict.violations]}")
    assert verdict.status == "invalid" and verdict.violations[0].ops == (first_ack, bad_ack)


if __name__ == "__main__":
    main()
