"""One scenario run, from stack up to report, with every failure turned into a reported error."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenarios import Scenario

from .. import __version__
from ..faults.schedule import Schedule
from ..history import History, HistoryRecorder, merge_histories, write_history
from ..invariants import CheckConfig, Quiescence, Verdict, check_all
from ..load.config import DEFAULT_WEIGHTS, LoadConfig, Stage
from ..report import FaultPlan, RunFiles, RunInfo, RunResult, ScenarioInfo, SLOTargets, build_result
from ..report import render_run, write_result
from reference_app.settings import DEV_JWT_SECRET

from ..stack import LocalStack, StackConfig
from ..stack.system import ExternalSystem, SystemUnderTest
from .capture import capture_snapshot, scrape_metrics, wait_quiet
from .load_process import start_load
from .quiesce import QuiescePolicy
from .nemesis import Nemesis
from .options import RunOptions
from .progress import Progress

__all__ = ["RunOutcome", "run_scenario", "SLO_CHECKS"]

log = logging.getLogger(__name__)

SLO_CHECKS = ("slo-error-rate", "slo-latency-p95")


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    result: RunResult

    @property
    def exit_code(self) -> int:
        return self.result.exit_code

    @property
    def verdict(self) -> str:
        return self.result.verdict

    def verdict_of(self, invariant: str) -> Verdict | None:
        return next((v for v in self.result.verdicts if v.invariant == invariant), None)


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _schedule(scenario: Scenario, seed: int, duration: float) -> Schedule:
    """The scenario's fixed faults that start within the run, plus its seeded random ones."""
    fixed = [f for f in scenario.faults if float(f["at"]) < duration]
    schedule = Schedule.from_dicts(fixed)
    spec = scenario.random_faults
    if spec:
        drawn = Schedule.random(
            int(spec.get("seed", seed)),
            spec["templates"],
            horizon=float(spec.get("horizon", duration)),
            count=int(spec.get("count", 1)),
            min_duration=float(spec.get("min_duration", 1.0)),
            max_duration=float(spec.get("max_duration", 3.0)),
        )
        schedule = Schedule(tuple(sorted(schedule.faults + drawn.faults, key=lambda f: f.at)))
    return schedule


def _copy_logs(stack: SystemUnderTest, run_dir: Path) -> list[str]:
    if stack.log_dir is None:
        return []
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    copied = []
    for path in sorted(Path(stack.log_dir).rglob("*.log")):
        target = logs / path.name
        shutil.copyfile(path, target)
        copied.append(str(target.relative_to(run_dir)))
    return copied


def run_scenario(scenario: Scenario, options: RunOptions | None = None) -> RunOutcome:
    """Run ``scenario``; never raises for a failed run: the outcome says ``error`` and why."""
    options = options or RunOptions()
    seed = options.seed if options.seed is not None else scenario.seed
    duration = options.duration_s or scenario.duration_s
    users = options.users or scenario.load.users
    workers = options.workers if options.workers is not None else scenario.load.workers
    weakenings = tuple(sorted(options.weakenings or ()))
    started = dt.datetime.now(dt.timezone.utc)
    run_id = f"{scenario.name}-{started.strftime('%Y%m%dT%H%M%SZ')}-s{seed}"
    run_dir = Path(options.out_dir) / run_id
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = Path(options.out_dir) / f"{run_id}-{suffix}"
    run_dir.mkdir(parents=True)
    parts = run_dir / "history-parts"
    parts.mkdir()
    rate = scenario.stack.env.get("STORMPROOF_RATE_API_PER_SECOND")
    slo = CheckConfig(
        error_rate_max=float(scenario.slo.get("error_rate_max", 0.01)),
        latency_p95_ms=float(scenario.slo.get("latency_p95_ms", 200.0)),
        # The limit the scenario gives the app is the one its answers are held to.
        rate_limit_per_s=float(rate) if rate and float(rate) > 0 else None,
        rate_limit_burst=float(scenario.stack.env.get("STORMPROOF_RATE_API_BURST", "400")),
    )
    history: History | None = None
    quiescence: Quiescence | None = None
    verdicts: list[Verdict] = []
    logs: list[str] = []
    error: str | None = None
    schedule = Schedule(())
    try:
        schedule = _schedule(scenario, seed, duration)
        with _system(scenario, options, weakenings, schedule) as stack:
            history, verdicts, logs, error, quiescence = _drive(
                scenario, stack, run_dir, parts, schedule, seed, duration, users, workers, slo, options
            )
    except Exception as exc:  # noqa: BLE001 - a failed run is a result with verdict "error"
        log.exception("run %s failed", run_id)
        error = f"{type(exc).__name__}: {exc}"
    finished = dt.datetime.now(dt.timezone.utc)
    name = scenario.name if Path(scenario.source).parent.name == "scenarios" else scenario.source
    command = " ".join(["stormproof", "run", name, "--seed", str(seed), *options.replay_args()])
    weights = dict(scenario.load.weights or DEFAULT_WEIGHTS)
    result = build_result(
        ScenarioInfo(
            name=scenario.name, description=scenario.description, seed=seed, duration_s=duration, users=users,
            spawn_rate=scenario.load.spawn_rate, weights=weights,
            faults=tuple(FaultPlan(f.at, f.duration, f.fault, f.target, dict(f.params)) for f in schedule.faults),
            invariants=tuple(scenario.invariants) + SLO_CHECKS,
            slo=SLOTargets(slo.error_rate_max, slo.latency_p95_ms),
        ),
        RunInfo(
            id=run_dir.name, started_at=started.isoformat(), finished_at=finished.isoformat(),
            duration_s=round((finished - started).total_seconds(), 3), backend=options.backend_name,
            weakenings=weakenings,
            command=command, version=__version__, commit=_commit(), host=socket.gethostname(),
        ),
        verdicts,
        history,
        files=RunFiles(
            history="history.jsonl",
            locust_stats="locust/stats_stats.csv" if (run_dir / "locust" / "stats_stats.csv").exists() else None,
            logs=tuple(logs),
        ),
        error=error,
        quiescence=quiescence,
    )
    write_result(run_dir, result)
    if history is None:
        write_history(History(()), run_dir / "history.jsonl")
    render_run(run_dir)
    shutil.rmtree(parts, ignore_errors=True)
    return RunOutcome(run_dir, result)


def _system(scenario: Scenario, options: RunOptions, weakenings: tuple[str, ...], schedule: Schedule) -> Any:
    """The system under test: started here (local), or already running (external)."""
    if options.app_url:
        if not options.database_url:
            raise ValueError("--app-url needs --database-url (the checkers read the final state there)")
        if schedule.faults:
            raise ValueError(
                f"scenario {scenario.name} injects faults, which need links and processes this harness controls; "
                "run it with --app-command (the harness starts your backend behind its proxies) instead"
            )
        if weakenings:
            raise ValueError("--weaken switches off fixes of the reference app; it cannot weaken an external backend")
        return ExternalSystem(
            app_url=options.app_url, database_url=options.database_url,
            jwt_secret=options.jwt_secret or os.environ.get("STORMPROOF_JWT_SECRET") or DEV_JWT_SECRET,
            tenants=scenario.stack.tenants, reps=scenario.stack.reps, appointments=scenario.stack.appointments,
        )
    config = StackConfig(
        weakenings=weakenings, app_workers=scenario.stack.app_workers, task_workers=scenario.stack.task_workers,
        worker_concurrency=scenario.stack.worker_concurrency, tenants=scenario.stack.tenants,
        reps=scenario.stack.reps, appointments=scenario.stack.appointments,
        shunya=dict(scenario.stack.shunya), env=dict(scenario.stack.env), app_command=options.app_command,
    )
    if options.backend == "docker":
        if options.app_command:
            raise ValueError("--app-command runs your backend as a local process; use --backend local with it")
        from ..stack.docker import DockerStack

        return DockerStack(config)
    return LocalStack(config)


def _drive(
    scenario: Scenario, stack: SystemUnderTest, run_dir: Path, parts: Path, schedule: Schedule,
    seed: int, duration: float, users: int, workers: int, slo: CheckConfig, options: RunOptions,
) -> tuple[History, list[Verdict], list[str], str | None, Quiescence]:
    error: str | None = None
    baseline = scrape_metrics(stack)
    origin = time.monotonic_ns()  # time 0 of the history: the load and the nemesis start now
    nemesis_recorder = HistoryRecorder(parts / "nemesis.jsonl", origin_ns=origin)
    config = LoadConfig(
        app_url=stack.app_url, tenants=tuple(t.to_dict() for t in stack.tenants), webhook_secret=stack.webhook_secret,
        weights=dict(scenario.load.weights or DEFAULT_WEIGHTS), seed=seed,
        hot_appointments=scenario.load.hot_appointments, origin_ns=origin, history_dir=str(parts),
        progress_path=str(run_dir / "locust" / "progress.json"),
        stages=tuple(Stage(**s) for s in scenario.load.stages), request_timeout_s=scenario.load.request_timeout_s,
    )
    nemesis = Nemesis(schedule, stack, nemesis_recorder)
    load = start_load(config, run_dir, users=users, spawn_rate=scenario.load.spawn_rate, duration_s=duration,
                      workers=workers)
    nemesis.start()
    progress = Progress(run_dir / "locust" / "progress.json",
                        lambda: [f"{f}@{t}" for f, t in list(nemesis.active)], total_s=duration)
    if options.progress:
        progress.start()
    try:
        code = load.wait(timeout=duration + 120)
        if code is None:
            error = "the load did not stop in time; it was killed"
            load.stop()
        elif code != 0:
            error = f"Locust exited with {code}; see locust/locust.log and locust/stdout.log"
    finally:
        nemesis.stop()
        if options.progress:
            progress.stop()
        if load.running():
            load.stop()
        nemesis_recorder.close()
    if nemesis.error is not None:
        error = error or f"the nemesis failed: {nemesis.error}"
    policy = QuiescePolicy() if options.quiesce_s is None else QuiescePolicy(cap_s=options.quiesce_s)
    quiescence = wait_quiet(stack, policy)
    log.info("quiescence: %s", quiescence.summary())
    snapshot = capture_snapshot(stack, baseline_metrics=baseline, config=slo, quiescence=quiescence)
    history = merge_histories(sorted(parts.glob("*.jsonl")))
    write_history(history, run_dir / "history.jsonl")
    verdicts = check_all(history, snapshot, tuple(scenario.invariants) + SLO_CHECKS)
    logs = _copy_logs(stack, run_dir)
    return history, verdicts, logs, error, quiescence


