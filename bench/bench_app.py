"""The reference app under the smoke mix, direct (no fault proxy): this tree beside a baseline commit's app.

Three apps run side by side on one PostgreSQL and one Redis (a database and a
Redis db each), each with the smoke scenario's Shunya stub and one Celery
worker:

* ``baseline``: the app of ``--baseline-rev`` (default: the merge-base with
  main), every fix on, with that commit's defaults (one uvicorn worker); its
  ``reference_app/`` is extracted with ``git archive`` into a temporary
  directory (as ``stormproof/reference_app``) and put first on ``PYTHONPATH``, so the schema, the seed, the
  worker and the load are this tree's;
* ``current``: this tree's app, every fix on, its default number of workers
  (``--app-workers`` to pin it);
* ``weakened``: this tree's app with every weakening (``stormproof
  weakenings``), same workers: what the fixes cost;
* ``base-weak`` (with ``--baseline-weakened``): the baseline's app with every
  weakening, the baseline's hardening cost beside this tree's.

Before each step the app rests ``--idle`` seconds (3): its CPU at rest (the
outbox relay's polls, the sweeper) is measured and, scaled to the step's wall
time, taken out of the "net" CPU per request. On a loaded machine the app
serves few requests per second and that background is a large share of the raw
figure; the net figure compares the requests' own cost.

The load is the smoke mix (the default action weights, the smoke scenario's
seed and hot appointments) from the run's own Locust users, recording their
history as in a run. For each number of users in ``--users``, the apps take
turns (the order rotates every round), ``--duration`` seconds each, so that
they share the machine's noise. Per app and users: requests per second, p95
(Locust's histogram), errors, and the app's CPU-seconds per request (user +
system time of the uvicorn processes, from /proc/PID/stat, over the load
window). The headline is the best requests per second at a p95 under
``--slo-ms`` (200, the plan's SLO), and the ratio of CPU per request with every
fix on to the weakened app's. The load average is printed at each step: the
machine is shared.

    flock -w 1500 /tmp/sp-heavy.lock .venv/bin/python bench/bench_app.py \\
        [--users 12,48] [--duration 12] [--rounds 2] [--baseline-rev REV] [--app-workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stormproof.harness.load.config import LoadConfig  # noqa: E402
from stormproof.harness.stack import LocalStack, StackConfig  # noqa: E402
from stormproof.harness.stack.postgres import EphemeralPostgres  # noqa: E402
from stormproof.harness.stack.redis import EphemeralRedis  # noqa: E402
from stormproof.reference_app.weaken import WEAKENINGS  # noqa: E402
from stormproof.scenarios import load_scenario  # noqa: E402

LOCUSTFILE = REPO / "harness" / "load" / "locustfile.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def merge_base() -> str:
    """The commit this branch left main at: today's app, for a branch under work."""
    out = subprocess.run(["git", "-C", str(REPO), "merge-base", "HEAD", "main"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench_app: cannot find the merge-base with main ({out.stderr.strip()}); "
                         "pass --baseline-rev REV")
    return out.stdout.strip()


def extract_app(rev: str, into: Path) -> Path:
    """``reference_app/`` of ``rev`` under ``into`` (git archive: the repository is not touched)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "reference_app"], capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"bench_app: git archive {rev} failed: {archive.stderr.decode().strip()}")
    # As ``stormproof/reference_app`` under ``into``: with ``into`` first on PYTHONPATH, the import
    # ``stormproof.reference_app`` finds this copy before the editable install's mapping.
    (into / "stormproof").mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into / "stormproof")], input=archive.stdout, check=True)
    return into


def process_tree_cpu(root: int) -> float:
    """User + system CPU-seconds of ``root`` and every live descendant (uvicorn's worker processes)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


@dataclass
class Sample:
    requests: int
    failures: int
    rps: float
    p95_ms: float
    cpu_s: float
    load_avg: float
    #: The app's CPU at rest (outbox relay, sweeper, gauges), CPU-seconds per second, measured just before.
    idle_rate: float = 0.0
    wall_s: float = 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_s / self.requests if self.requests else float("nan")

    @property
    def net_cpu_s(self) -> float:
        """The load's own CPU: the window's, less what the app spends at rest in as long."""
        return max(0.0, self.cpu_s - self.idle_rate * self.wall_s)

    @property
    def net_ms_per_request(self) -> float:
        return 1000 * self.net_cpu_s / self.requests if self.requests else float("nan")


def percentile(histogram: dict[int, int], q: float) -> float:
    total = sum(histogram.values())
    if not total:
        return float("nan")
    rank, seen = q * total, 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


def run_load(stack: LocalStack, *, users: int, duration_s: int, seed: int, hot: int, work: Path,
             idle_s: float = 0.0) -> Sample:
    """One headless Locust run of the smoke mix against ``stack``'s app, measured.

    With ``idle_s``, the app's CPU at rest is measured for that long first: on a loaded machine the
    app serves few requests per second and its background work (the outbox relay's polls, the
    sweeper) is a large share of its CPU per request; the net figure takes it out.
    """
    assert stack.app is not None and stack.app.process is not None and stack.app.process.pid is not None
    history_dir = work / "history"
    config = LoadConfig(
        app_url=stack.app_url, tenants=tuple(t.to_dict() for t in stack.tenants),
        webhook_secret=stack.webhook_secret, seed=seed, hot_appointments=hot,
        origin_ns=time.monotonic_ns(), history_dir=str(history_dir),
    )
    config_path = work / "load-config.json"
    config_path.write_text(config.to_json())
    stats_path = work / "stats"
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--json-file", str(stats_path), "-u", str(users), "-r", str(users), "-t", f"{duration_s}s",
        "--stop-timeout", "5", "--exit-code-on-error", "0", "--loglevel", "ERROR",
    ]
    env = {**os.environ, "STORMPROOF_LOAD_CONFIG": str(config_path)}
    pid = stack.app.process.pid
    idle_rate = 0.0
    if idle_s > 0:
        idle_start, idle_cpu = time.monotonic(), process_tree_cpu(pid)
        time.sleep(idle_s)
        idle_rate = (process_tree_cpu(pid) - idle_cpu) / (time.monotonic() - idle_start)
    cpu_before = process_tree_cpu(pid)
    load_before = os.getloadavg()[0]
    wall_start = time.monotonic()
    subprocess.run(argv, env=env, check=True, timeout=duration_s + 120, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    cpu = process_tree_cpu(pid) - cpu_before
    wall = time.monotonic() - wall_start
    entries = json.loads(Path(f"{stats_path}.json").read_text())
    histogram: dict[int, int] = {}
    requests = failures = 0
    first, last = float("inf"), 0.0
    for entry in entries:
        requests += entry["num_requests"]
        failures += entry["num_failures"]
        first = min(first, entry["start_time"])
        last = max(last, entry["last_request_timestamp"] or 0.0)
        for value, count in entry["response_times"].items():
            histogram[int(float(value))] = histogram.get(int(float(value)), 0) + count
    shutil.rmtree(history_dir, ignore_errors=True)
    elapsed = max(last - first, 1e-9)
    load_avg = (load_before + os.getloadavg()[0]) / 2
    return Sample(requests, failures, requests / elapsed, percentile(histogram, 0.95), cpu, load_avg,
                  idle_rate, wall)


@dataclass
class App:
    name: str
    stack: LocalStack
    samples: dict[int, list[Sample]] = field(default_factory=dict)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="12,48", help="comma-separated user counts (default 12,48)")
    parser.add_argument("--duration", type=int, default=12, help="seconds of load per app and step (default 12)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--baseline-rev", default=None, help="the baseline commit (default: merge-base with main)")
    parser.add_argument("--app-workers", type=int, default=None,
                        help="uvicorn workers of this tree's apps (default: the app's own default, the cores)")
    parser.add_argument("--baseline-workers", type=int, default=1, help="uvicorn workers of the baseline (default 1)")
    parser.add_argument("--slo-ms", type=float, default=200.0, help="the p95 bound of the headline (default 200)")
    parser.add_argument("--no-weakened", action="store_true", help="skip the weakened app (no CPU ratio)")
    parser.add_argument("--baseline-weakened", action="store_true",
                        help="also the baseline's app with every weakening: the baseline's hardening cost")
    parser.add_argument("--idle", type=float, default=3.0,
                        help="seconds of the app at rest measured before each step, its background CPU taken "
                             "out of the net CPU per request (default 3; 0: none)")
    args = parser.parse_args(argv)
    levels = [int(u) for u in args.users.split(",") if u.strip()]
    if not levels or min(levels) < 1 or not 5 <= args.duration <= 120 or not 1 <= args.rounds <= 5:
        parser.error("--users must be positive integers, --duration 5..120 s, --rounds 1..5")
    n_apps = (2 if args.no_weakened else 3) + (1 if args.baseline_weakened else 0)
    budget = len(levels) * args.rounds * n_apps * (args.duration + 8 + args.idle)
    if budget > 600:
        parser.error(f"about {budget} s of load: keep a run under 10 minutes (fewer --users, --rounds or --duration)")

    rev = args.baseline_rev or merge_base()
    smoke = load_scenario("smoke")
    stack_spec = smoke.stack
    work = Path(tempfile.mkdtemp(prefix="bench-app-"))
    (work / "baseline").mkdir()
    baseline_dir = extract_app(rev, work / "baseline")
    loaded = subprocess.run([sys.executable, "-c", "import stormproof.reference_app as m; print(m.__file__)"],
                            env={**os.environ, "PYTHONPATH": str(baseline_dir)}, capture_output=True, text=True)
    if not loaded.stdout.strip().startswith(str(baseline_dir)):  # else "baseline" would be this tree's app
        raise SystemExit(f"bench_app: the baseline's app does not load from {baseline_dir}: "
                         f"{loaded.stdout.strip() or loaded.stderr.strip()[-300:]}")
    from stormproof.reference_app.settings import default_app_workers

    workers = args.app_workers or default_app_workers()

    def config(weakenings: tuple[str, ...] = (), command: tuple[str, ...] | None = None,
               app_workers: int = workers) -> StackConfig:
        return StackConfig(
            weakenings=weakenings, app_workers=app_workers, task_workers=stack_spec.task_workers,
            worker_concurrency=stack_spec.worker_concurrency, shunya=dict(stack_spec.shunya or {}),
            env={**stack_spec.env, "STORMPROOF_APP_WORKERS": str(app_workers)}, proxies=False, app_command=command,
        )

    baseline_command = (
        "env", f"PYTHONPATH={baseline_dir}", sys.executable, "-m", "uvicorn", "stormproof.reference_app.main:create_app",
        "--factory", "--host", "{host}", "--port", "{port}", "--workers", str(args.baseline_workers),
        "--log-level", "warning", "--no-access-log",
    )
    postgres = EphemeralPostgres().start()
    redis = EphemeralRedis().start()
    apps: list[App] = []
    try:
        specs = [("baseline", config(command=baseline_command, app_workers=args.baseline_workers)),
                 ("current", config())]
        if not args.no_weakened:
            specs.append(("weakened", config(weakenings=tuple(sorted(WEAKENINGS)))))
        if args.baseline_weakened:
            specs.append(("base-weak", config(weakenings=tuple(sorted(WEAKENINGS)), command=baseline_command,
                                              app_workers=args.baseline_workers)))
        for db, (name, cfg) in enumerate(specs):  # one after another: started side by side, they hung
            apps.append(App(name, LocalStack(cfg, postgres=postgres, redis=redis, redis_db=db).start()))
        print(f"stacks ready; load average {os.getloadavg()[0]:.2f}", flush=True)
        print(f"baseline {rev[:12]} ({args.baseline_workers} uvicorn worker(s)); current and weakened: "
              f"{workers} worker(s); {os.cpu_count()} cores; smoke mix, seed {smoke.seed}, "
              f"{stack_spec.task_workers} Celery worker(s) each; {args.duration} s per step, {args.rounds} round(s)")
        print(f"{'round':>5} {'users':>5} {'app':9} {'req/s':>8} {'p95 ms':>7} {'errors':>7} "
              f"{'CPU ms/req':>10} {'net ms/req':>10} {'load':>5}", flush=True)
        for round_no in range(args.rounds):
            for users in levels:
                order = apps[round_no % len(apps):] + apps[:round_no % len(apps)]
                for app in order:
                    step = work / f"{app.name}-{users}-{round_no}"
                    step.mkdir()
                    sample = run_load(app.stack, users=users, duration_s=args.duration, seed=smoke.seed,
                                      hot=smoke.load.hot_appointments, work=step, idle_s=args.idle)
                    app.samples.setdefault(users, []).append(sample)
                    print(f"{round_no + 1:5} {users:5} {app.name:9} {sample.rps:8.1f} {sample.p95_ms:7.0f} "
                          f"{sample.failures / max(sample.requests, 1):7.1%} {sample.cpu_ms_per_request:10.2f} "
                          f"{sample.net_ms_per_request:10.2f} "
                          f"{sample.load_avg:5.2f}", flush=True)
    finally:
        for app in apps:
            app.stack.stop()
        redis.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)

    print("\nmedians over the rounds")
    print(f"{'users':>5} {'app':9} {'req/s':>8} {'p95 ms':>7} {'CPU ms/req':>10} {'net ms/req':>10}")
    best: dict[str, tuple[float, int]] = {}
    for users in levels:
        for app in apps:
            samples = app.samples.get(users, [])
            rps = median([s.rps for s in samples])
            p95 = median([s.p95_ms for s in samples])
            print(f"{users:5} {app.name:9} {rps:8.1f} {p95:7.0f} "
                  f"{median([s.cpu_ms_per_request for s in samples]):10.2f} "
                  f"{median([s.net_ms_per_request for s in samples]):10.2f}")
            if p95 < args.slo_ms and rps > best.get(app.name, (0.0, 0))[0]:
                best[app.name] = (rps, users)
    base, cur = best.get("baseline"), best.get("current")
    for name, (rps, users) in best.items():
        print(f"best req/s at p95 < {args.slo_ms:.0f} ms: {name:9} {rps:8.1f} ({users} users)")
    if base and cur:
        print(f"current / baseline req/s at p95 < {args.slo_ms:.0f} ms: {cur[0] / base[0]:.2f}x")
    if not args.no_weakened:
        def per_request(app: App, net: bool) -> float:
            samples = [s for ss in app.samples.values() for s in ss]
            cpu = sum(s.net_cpu_s if net else s.cpu_s for s in samples)
            return cpu / max(1, sum(s.requests for s in samples))

        for net in (False, True):
            cpu = {app.name: per_request(app, net) for app in apps}
            label = "net of the app at rest" if net else "all of it"
            print(f"app CPU per request, all steps, {label}: "
                  + ", ".join(f"{n} {1000 * c:.2f} ms" for n, c in cpu.items()))
            line = f"hardening cost ({label}): current / weakened {cpu['current'] / cpu['weakened']:.2f}x"
            if "base-weak" in cpu:
                line += f"; baseline / base-weak {cpu['baseline'] / cpu['base-weak']:.2f}x"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
