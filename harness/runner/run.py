"""One scenario run, from stack up to report, with every failure turned into a reported error.

The run takes its :class:`~stormproof.harness.plan.RunPlan` (built and checked before
anything starts) and nothing else about the scenario: the stack's shape, the
load, the nemesis's faults, the checks and result.json's ``plan`` all come
from it. A failure to set the system up (a service that will not start, an
external app that does not answer) leaves a run directory marked as not run
(verdict ``error``, ``not_run`` the reason); the traceback goes to the run's
``stormproof.log``, never to the terminal.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..history import History, HistoryRecorder, merge_histories, write_history
from ..history.spool import SPOOL_SUFFIX, finish_spool
from ..load.client import Derived
from ..invariants import Quiescence, Verdict, check_all
from ..load.config import LoadConfig, Stage
from ..load.tokens import lapse_for
from ..plan import SLO_CHECKS, LoadSpec, RunPlan, Scenario, build_plan
from ..plan.targets import stack_config
from ..promises.run import run_coverage
from ..report import FaultPlan, RunFiles, RunInfo, RunResult, ScenarioInfo, SLOTargets, build_result
from ..report import render_run, write_result
from ..reproduce.command import attach_reproduce
from stormproof.reference_app.settings import DEV_JWT_SECRET

from ..stack import LocalStack
from ..stack.system import ExternalSystem, SystemUnderTest
from .capture import capture_snapshot, scrape_metrics, wait_quiet
from .sampling import GaugeSampler, write_samples
from .load_process import load_exceptions, start_load
from .quiesce import QuiescePolicy
from .services import describe_exits, exited_on_their_own
from .nemesis import Nemesis
from .options import RunOptions
from .progress import Progress

__all__ = ["LOG_FILE", "RunOutcome", "judge", "record_run", "run_plan", "run_scenario", "SLO_CHECKS"]

log = logging.getLogger(__name__)

#: The harness's own log of a run (tracebacks included), in the run directory.
LOG_FILE = "stormproof.log"


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

    @property
    def not_run(self) -> str | None:
        """Why the run never started (the system could not be set up), or None."""
        return self.result.not_run

    @property
    def log_file(self) -> Path:
        return self.run_dir / LOG_FILE

    def verdict_of(self, invariant: str) -> Verdict | None:
        return next((v for v in self.result.verdicts if v.invariant == invariant), None)


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _copy_logs(stack: SystemUnderTest, run_dir: Path) -> list[str]:
    source = stack.log_dir  # read once: a container stack fetches every container's log to answer it
    if source is None:
        return []
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    copied = []
    for path in sorted(Path(source).rglob("*.log")):
        target = logs / path.name
        shutil.copyfile(path, target)
        copied.append(str(target.relative_to(run_dir)))
    return copied


def run_scenario(scenario: Scenario, options: RunOptions | None = None) -> RunOutcome:
    """Plan ``scenario`` with ``options``, then run it (see :func:`run_plan`).

    A bad plan raises :class:`~stormproof.harness.plan.PlanError` before anything starts or any directory is made.
    """
    options = options or RunOptions()
    return run_plan(build_plan(scenario, options), options)


@contextmanager
def _run_log(path: Path) -> Iterator[None]:
    """The harness's log records (and tracebacks) go to ``path`` while the run lasts, not to the terminal."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("stormproof.harness")
    previous = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()


def _new_run_dir(out_dir: Path, run_id: str) -> Path:
    run_dir, suffix = out_dir / run_id, 1
    while run_dir.exists():
        suffix += 1
        run_dir = out_dir / f"{run_id}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def run_plan(plan: RunPlan, options: RunOptions | None = None) -> RunOutcome:
    """Run ``plan``; never raises for a failed run: the outcome says ``error`` and why.

    ``options`` gives what the plan does not record: where run directories go,
    the progress line, an external backend's database URL and JWT secret.
    """
    options = options or RunOptions()
    started = dt.datetime.now(dt.timezone.utc)
    run_id = f"{plan.scenario.name}-{started.strftime('%Y%m%dT%H%M%SZ')}-s{plan.seed}"
    run_dir = _new_run_dir(Path(options.out_dir), run_id)
    parts = run_dir / "history-parts"
    parts.mkdir()
    history: History | None = None
    quiescence: Quiescence | None = None
    verdicts: list[Verdict] = []
    logs: list[str] = []
    error: str | None = None
    not_run: str | None = None
    recorded: RunOutcome | None = None
    with _run_log(run_dir / LOG_FILE):
        log.info("plan: %s", plan.to_dict())
        try:
            with ExitStack() as running:
                try:
                    log.info("phase: starting the system under test")
                    stack = running.enter_context(_system(plan, options))
                    log.info("phase: system up")
                except Exception as exc:  # noqa: BLE001 - the system could not be set up: reported as not run
                    log.exception("run %s: the system under test could not be set up", run_dir.name)
                    not_run = str(exc) or type(exc).__name__
                else:
                    history, verdicts, logs, error, quiescence = _drive(plan, stack, run_dir, parts, options)
                    # The checks are done and the logs copied: the report need not wait for the stack to stop
                    # (seconds: the Celery worker's warm shutdown alone takes 1.5 to 2.5).
                    recorded = record_run(plan, run_dir, started, history, verdicts, logs, error=error,
                                          not_run=None, command=_replay(plan, options), quiescence=quiescence)
                    log.info("phase: stopping the system under test")
        except Exception as exc:  # noqa: BLE001 - a failed run (or stop) is a result with verdict "error"
            log.exception("run %s failed", run_dir.name)
            error = error or f"{type(exc).__name__}: {exc}"
            recorded = None  # recorded before a stop that failed: written again, with the error
        log.info("phase: system stopped")
        if recorded is not None:
            return recorded
        return record_run(plan, run_dir, started, history, verdicts, logs, error=error, not_run=not_run,
                          command=_replay(plan, options), quiescence=quiescence)


def record_run(
    plan: RunPlan, run_dir: Path, started: dt.datetime, history: History | None, verdicts: list[Verdict],
    logs: list[str], *, error: str | None, not_run: str | None, command: str, quiescence: Quiescence | None = None,
) -> RunOutcome:
    """Write a run's result.json, history and report into ``run_dir`` (``run`` and ``check`` both end here)."""
    finished = dt.datetime.now(dt.timezone.utc)
    verdicts = attach_reproduce(verdicts, run_dir, plan.app_command)  # issue 15: each violation's reproduce command
    result = build_result(
        _scenario_info(plan),
        RunInfo(
            id=run_dir.name, started_at=started.isoformat(), finished_at=finished.isoformat(),
            duration_s=round((finished - started).total_seconds(), 3), backend=plan.backend,
            weakenings=plan.weakenings, command=command, version=__version__, commit=_commit(),
            host=socket.gethostname(),
        ),
        verdicts,
        history,
        files=RunFiles(
            history="history.jsonl",
            locust_stats="locust/stats_stats.csv" if (run_dir / "locust" / "stats_stats.csv").exists() else None,
            logs=(LOG_FILE, *logs),
        ),
        error=error,
        plan=plan.to_dict(),
        not_run=not_run,
        quiescence=quiescence,
        config=plan.check_config(),
    )
    write_result(run_dir, result)
    if history is None:
        history = History(())
        write_history(history, run_dir / "history.jsonl")
    render_run(run_dir, history=history, result=result)  # what was just checked and written: no second load from disk
    log.info("phase: report written")
    shutil.rmtree(run_dir / "history-parts", ignore_errors=True)
    return RunOutcome(run_dir, result)


def _replay(plan: RunPlan, options: RunOptions) -> str:
    """The command that runs this plan again."""
    scenario = plan.scenario
    name = scenario.name if Path(scenario.source).parent.name == "scenarios" else scenario.source
    return " ".join(["stormproof", "run", name, "--seed", str(plan.seed), *options.replay_args()])


def _scenario_info(plan: RunPlan) -> ScenarioInfo:
    """The report's view of the plan (result.json's ``scenario``)."""
    scenario, config = plan.scenario, plan.check_config()
    return ScenarioInfo(
        name=scenario.name, description=scenario.description, seed=plan.seed, duration_s=plan.duration_s,
        users=plan.users, spawn_rate=scenario.load.spawn_rate, weights=plan.weights,
        faults=tuple(FaultPlan(f.at, f.duration, f.fault, f.target, f.wire_params())  # type: ignore[attr-defined]
                     for f in plan.faults),
        invariants=plan.checks,
        slo=SLOTargets(config.error_rate_max, config.latency_p95_ms),
    )


def _system(plan: RunPlan, options: RunOptions) -> Any:
    """The system under test: started here (local, docker), or already running (external)."""
    stack = plan.scenario.stack
    if plan.backend == "external":
        assert plan.app_url is not None and options.database_url  # build_plan saw to it
        return ExternalSystem(
            app_url=plan.app_url, database_url=options.database_url,
            jwt_secret=options.jwt_secret or os.environ.get("STORMPROOF_JWT_SECRET") or DEV_JWT_SECRET,
            tenants=stack.tenants, reps=stack.reps, appointments=stack.appointments,
        )
    config = stack_config(stack, weakenings=plan.weakenings, app_command=plan.app_command)
    if plan.backend == "docker":
        from ..stack.docker import DockerStack

        return DockerStack(config)
    return LocalStack(config)


def _quiet(load_spec: LoadSpec, stack: SystemUnderTest, users: int) -> dict[str, Any]:
    """The quiet tenants (the stack's last ``quiet_tenants``) and the pause that keeps each one's users,
    together, at ``quiet_rate_per_s`` actions a second (users are dealt to tenants in turn)."""
    if not load_spec.quiet_tenants:
        return {}
    tenants = [str(t.company_id) for t in stack.tenants]
    per_tenant = -(-users // len(tenants))
    return {"quiet_tenants": tuple(tenants[-load_spec.quiet_tenants:]),
            "quiet_interval_s": per_tenant / load_spec.quiet_rate_per_s}


def _drive(
    plan: RunPlan, stack: SystemUnderTest, run_dir: Path, parts: Path, options: RunOptions,
) -> tuple[History, list[Verdict], list[str], str | None, Quiescence]:
    error: str | None = None
    load_spec = plan.scenario.load
    baseline = scrape_metrics(stack)
    origin = time.monotonic_ns()  # time 0 of the history: the load and the nemesis start now
    nemesis_recorder = HistoryRecorder(parts / "nemesis.jsonl", origin_ns=origin)
    config = LoadConfig(
        app_url=stack.app_url, tenants=tuple(t.to_dict() for t in stack.tenants), webhook_secret=stack.webhook_secret,
        weights=plan.weights, seed=plan.seed,
        hot_appointments=load_spec.hot_appointments, origin_ns=origin, history_dir=str(parts),
        progress_path=str(run_dir / "locust" / "progress.json"),
        stages=tuple(Stage(s.until_s, s.users, s.spawn_rate) for s in load_spec.stages),
        request_timeout_s=load_spec.request_timeout_s,
        idempotency_ttl_s=plan.idempotency_ttl_s,
        token_lapse_s=lapse_for(plan.duration_s),
        tick_s=load_spec.tick_ms / 1000,
        **_quiet(load_spec, stack, plan.users),
    )
    nemesis = Nemesis(plan, stack, nemesis_recorder)
    broker = getattr(stack, "redis_url", None)  # read directly, no proxy; None for an external app
    sampler = GaugeSampler(broker, lambda: scrape_metrics(stack)) if broker else None
    load = start_load(config, run_dir, users=plan.users, spawn_rate=load_spec.spawn_rate,
                      duration_s=plan.duration_s, workers=plan.workers, jwt_secret=getattr(stack, "jwt_secret", None))
    nemesis.start()
    if sampler is not None:
        sampler.start()
    log.info("phase: load and nemesis started")
    progress = Progress(run_dir / "locust" / "progress.json",
                        lambda: [f"{f}@{t}" for f, t in list(nemesis.active)], total_s=plan.duration_s)
    if options.progress:
        progress.start()
    try:
        code = load.wait(timeout=plan.duration_s + 120)
        if code is None:
            error = "the load did not stop in time; it was killed"
            load.stop()
        elif code != 0:
            error = f"Locust exited with {code}; see locust/locust.log and locust/stdout.log"
        else:
            error = load_exceptions(run_dir)
    finally:
        samples = sampler.stop() if sampler is not None else None
        nemesis.stop()
        if options.progress:
            progress.stop()
        if load.running():
            load.stop()
        nemesis_recorder.close()
    if nemesis.error is not None:
        error = error or f"the nemesis failed: {nemesis.error}"
    log.info("phase: load stopped, faults healed")
    if samples is not None:
        write_samples(samples, run_dir / "gauges.jsonl")
    history, verdicts, quiescence = judge(plan, stack, parts, run_dir, baseline, samples)
    down = exited_on_their_own(stack)
    if down:
        log.error("services down after the faults were healed: %s", down)
        error = error or describe_exits(down)
    logs = _copy_logs(stack, run_dir)
    log.info("phase: service logs copied")
    return history, verdicts, logs, error, quiescence


def finish_spools(parts: Path, tenants: Any) -> None:
    """Histories of load processes that died before writing theirs: derive them from their spools."""
    spools = sorted(parts.glob(f"*.jsonl{SPOOL_SUFFIX}"))
    if not spools:
        return
    company_ids = [str((t if isinstance(t, dict) else t.to_dict())["company_id"]) for t in tenants]
    for spool in spools:
        log.warning("load history %s was left unfinished (its process died): deriving it from the spool", spool.name)
        finish_spool(spool, Derived(company_ids))


def judge(
    plan: RunPlan, stack: SystemUnderTest, parts: Path, run_dir: Path, baseline: str | None,
    gauge_samples: tuple[Mapping[str, float], ...] | None = None,
) -> tuple[History, list[Verdict], Quiescence]:
    """Quiesce, snapshot, merge the histories in ``parts`` and check them (``run`` and ``check`` both)."""
    policy = QuiescePolicy(redeliver_s=plan.outbox_redeliver_s)
    if plan.quiesce_s is not None:
        policy = replace(policy, cap_s=plan.quiesce_s)
    quiescence = wait_quiet(stack, policy)
    log.info("quiescence: %s", quiescence.summary())
    snapshot = capture_snapshot(stack, baseline_metrics=baseline, config=plan.check_config(), quiescence=quiescence,
                                gauge_samples=gauge_samples)
    log.info("phase: snapshot taken")
    finish_spools(parts, stack.tenants)
    history = merge_histories(sorted(parts.glob("*.jsonl")))
    write_history(history, run_dir / "history.jsonl")
    log.info("phase: %d ops merged and written", len(history))
    verdicts = run_coverage(history, check_all(history, snapshot, plan.checks), plan.check_config(),
                            asked=plan.scenario.invariants)
    log.info("phase: checked")
    return history, verdicts, quiescence
