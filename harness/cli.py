"""The ``stormproof`` command.

Exit codes: 0 success (or every invariant held), 1 an invariant was violated,
2 an error stopped the run (bad input, a service that would not start).
Errors are printed as one line naming the cause and the fix; a traceback,
when there is one worth keeping, goes to a log file that the line names (the
run's ``stormproof.log`` for ``run``), never to the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from . import __version__

__all__ = ["main"]

EXIT_OK, EXIT_VIOLATION, EXIT_ERROR = 0, 1, 2
#: A run, verify or soak stopped by Ctrl-C (SIGINT) or SIGTERM before its verdict: the shell's 128 + signal,
#: never 0, so that a CI job cancelled or timed out mid-run cannot read as a pass.
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
#: Commands that serve until stopped: a signal is how they end, so it is a clean exit.
_SERVING = frozenset({"up"})


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with where to look), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _count(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0 seconds, got {text}")
    return value


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so that every service is stopped in order."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


def _stop_once(signum: int, frame: FrameType | None) -> None:
    """SIGINT or SIGTERM during ``up``: stop the stack; later signals are ignored so
    that a second Ctrl-C (or a supervisor's repeated TERM) cannot cut the cleanup short."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise _Terminated()


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a
    rename, so that a reader sees either no file or the whole of it, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _cmd_up(args: argparse.Namespace) -> int:
    import shlex

    from stormproof.reference_app.weaken import parse_weakenings

    from .stack import LocalStack, StackConfig

    stack_class: Any = LocalStack
    if args.backend == "docker":
        from .stack.docker import DockerStack

        stack_class = DockerStack
    from .plan import StackSpec

    defaults = StackSpec()  # the defaults a scenario file gets, too

    def given(name: str) -> int:
        value = getattr(args, name)
        return int(getattr(defaults, name) if value is None else value)

    config = StackConfig(
        weakenings=tuple(sorted(parse_weakenings(args.weaken))),
        app_workers=given("app_workers"),
        task_workers=given("task_workers"),
        tenants=given("tenants"),
        reps=given("reps"),
        appointments=given("appointments"),
        app_command=tuple(shlex.split(args.app_command)) if args.app_command else None,
    )
    json_file = Path(args.json_file) if args.json_file else None
    if json_file is not None:
        json_file.unlink(missing_ok=True)  # a stale file from an earlier stack must not be read as this one
    # SIGINT too, even when the shell started us with it ignored (a background job of a
    # script): a Ctrl-C of the script then stops the stack instead of orphaning it.
    previous = {sig: signal.signal(sig, _stop_once) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with stack_class(config) as stack:
            info = _ready_info(stack)
            text = json.dumps(info)
            if json_file is not None:
                _write_atomically(json_file, text + "\n")
            if args.json:
                print(text, flush=True)
            elif json_file is None or sys.stdout.isatty():
                _print_endpoints(info)
            if json_file is not None:
                print(f"stormproof: stack ready in {info['ready_after_s']}s; connection file {json_file} "
                      f"(stop with Ctrl-C, or `kill {os.getpid()}` from elsewhere)", file=sys.stderr, flush=True)
            _wait(args.duration)
    finally:
        if json_file is not None:
            json_file.unlink(missing_ok=True)  # the stack is gone: so is its connection file
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def _ready_info(stack: Any) -> dict[str, Any]:
    """``stack.info()`` plus what ``stormproof check`` needs later: the time origin every
    Locust process on this machine shares (so their histories merge on one clock) and the
    app's metrics at readiness (the baseline the metrics checker subtracts)."""
    info = dict(stack.info())
    info["origin_ns"] = time.monotonic_ns()
    info["ready_at"] = time.time()
    base = Path(info.get("run_dir") or ".")
    try:
        from .runner.capture import scrape_metrics

        baseline = base / "baseline-metrics.txt"
        baseline.write_text(scrape_metrics(stack))
        info["baseline_metrics"] = str(baseline)
    except Exception:  # noqa: BLE001 - no baseline: the metrics checker then counts from zero
        info["baseline_metrics"] = None
    return info


def _print_endpoints(info: dict) -> None:
    print(f"stormproof stack ready in {info['ready_after_s']}s")
    print(f"  app        {info['app_url']}   (through the fault proxy; try {info['app_url']}/docs)")
    if info.get("proxy_api_url"):
        links = ", ".join(info.get("proxies") or {})
        print(f"  proxy API  {info['proxy_api_url']}   (Toxiproxy API{'; links: ' + links if links else ''})")
    print(f"  database   {info['database_url']}")
    print(f"  redis      {info['redis_url']}")
    if info.get("shunya_url"):
        print(f"  shunya     {info['shunya_url']}   (stub; admin at /admin/config)")
    print(f"  workers    {info['task_workers']} Celery worker process(es)")
    print(f"  weakened   {', '.join(info['weakenings']) or 'nothing (all fixes on)'}")
    print(f"  logs       {info['run_dir']}/")
    for tenant in info["tenants"]:
        print(f"  {tenant['name']}: company {tenant['company_id']}")
        print(f"    manager token  {tenant['manager_token']}")
        print(f"    appointments   {', '.join(tenant['appointment_ids'][:3])} ...")
        print(f"    reps           {', '.join(tenant['rep_ids'])}")
    print("Ctrl-C stops everything and removes its data.", flush=True)


def _wait(duration: float | None) -> None:
    deadline = None if duration is None else time.monotonic() + duration
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))


def _cmd_doctor(args: argparse.Namespace) -> int:
    """Check that this machine can run a stack: binaries found, PostgreSQL and Redis start."""
    from .stack import EphemeralPostgres, EphemeralRedis, find_postgres_binary, find_redis_server

    print(f"python      {sys.version.split()[0]} ({sys.executable})")
    print(f"initdb      {find_postgres_binary('initdb')}")
    print(f"postgres    {find_postgres_binary('postgres')}")
    print(f"redis       {find_redis_server()}")
    started = time.monotonic()
    with EphemeralPostgres() as pg:
        print(f"PostgreSQL  started on port {pg.port} in {time.monotonic() - started:.2f}s")
    started = time.monotonic()
    with EphemeralRedis() as server:
        print(f"Redis       started on port {server.port} in {time.monotonic() - started:.2f}s")
    print("ok: this machine can run stormproof stacks")
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from stormproof.scenarios import load_scenario, scenario_names

    for name in scenario_names():
        scenario = load_scenario(name)
        summary = scenario.description.split(". ")[0].replace("\n", " ")
        breaks = f"  [breaks with --weaken {','.join(scenario.weaken)}]" if scenario.weaken else ""
        print(f"{name:26} {scenario.duration_s:4.0f}s  {summary}{breaks}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    import shlex

    from stormproof.scenarios import load_scenario, scenario_names

    from .plan import PlanError, build_plan
    from .runner import RunOptions, run_plan

    if args.all == bool(args.scenario):
        raise PlanError("command line", "", "give one scenario name (see `stormproof list`) or --all")
    names = scenario_names() if args.all else [args.scenario]
    weakenings = tuple(sorted({w.strip() for w in args.weaken.split(",") if w.strip()}))
    options = RunOptions(
        duration_s=args.duration, users=args.users, seed=args.seed, backend=args.backend,
        weakenings=weakenings or None, workers=args.workers,
        out_dir=Path(args.out), progress=not args.quiet,
        app_command=tuple(shlex.split(args.app_command)) if args.app_command else None,
        app_url=args.app_url, database_url=args.database_url, jwt_secret=args.jwt_secret,
    )
    # Every file and option is checked, and every plan built, before any service starts.
    plans = [build_plan(load_scenario(name), options) for name in names]
    worst = EXIT_OK
    outcomes = []
    for plan in plans:
        scenario = plan.scenario
        print(f"== {scenario.name}: {scenario.description.splitlines()[0] if scenario.description else ''}",
              file=sys.stderr)
        outcome = run_plan(plan, options)
        if outcome.not_run is not None:
            print(f"stormproof: error: {scenario.name} did not run: {outcome.not_run} "
                  f"(details: {outcome.log_file})", file=sys.stderr)
        else:
            _print_outcome(outcome)
        outcomes.append((scenario.name, outcome))
        worst = max(worst, outcome.exit_code)
    _finish_suite(outcomes, Path(args.out), junit=args.junit, summary=args.all)
    return worst


def _finish_suite(outcomes: list[tuple[str, Any]], out: Path, *, junit: str | None, summary: bool) -> None:
    """After the runs: ``latest`` links, the summary table (``--all``), one combined junit.xml (``--junit``)."""
    from pathlib import Path

    from .report.suite import link_latest, render_summary, suite_row, write_combined_junit

    rows, run_dirs, missing = [], [], []
    for name, outcome in outcomes:
        result = getattr(outcome, "result", None)
        run_dir = getattr(outcome, "run_dir", None)
        rows.append(suite_row(name, result, run_dir))
        if run_dir is not None and (Path(run_dir) / "result.json").is_file():
            link_latest(out, name, Path(run_dir))
            run_dirs.append(Path(run_dir))
        else:
            missing.append((name, str(getattr(outcome, "not_run", None) or "the run left no result")))
    if summary:
        print("\n" + render_summary(rows))
    if junit:
        path = write_combined_junit(Path(junit), run_dirs, missing)
        print(f"junit   {path}")


def _print_outcome(outcome) -> None:  # type: ignore[no-untyped-def]
    result = outcome.result
    stats = result.stats
    print(f"\n{result.scenario.name}: {result.verdict.upper()}  "
          f"({stats.get('requests', 0)} requests, {stats.get('rps', 0):.0f} req/s, "
          f"{len(result.faults)} fault windows, seed {result.scenario.seed})")
    for verdict in result.verdicts:
        count = verdict.summary.get("violations", len(verdict.violations))
        mark = {"valid": "ok  ", "invalid": "FAIL", "unknown": "??  "}[verdict.status]
        detail = f"{count} violation(s)" if verdict.status == "invalid" else (verdict.error or "")
        print(f"  {mark} {verdict.invariant:28} {verdict.kind:9} {detail}")
        if verdict.status == "invalid" and verdict.violations:
            print(f"         first: {verdict.violations[0].message}")
    if result.error:
        print(f"  error: {result.error}")
    print(f"  report  {outcome.run_dir / 'report.html'}")
    print(f"  replay  {result.run.command}")


def _cmd_check(args: argparse.Namespace) -> int:
    """Histories from plain Locust -> verdicts, result.json and a report, like ``run``."""
    from .runner.check import check_histories

    outcome = check_histories(args.history_dir, args.stack, scenario=args.scenario, out_dir=args.out)
    _print_outcome(outcome)
    return outcome.exit_code


def _cmd_weakenings(args: argparse.Namespace) -> int:
    from stormproof.reference_app.weaken import WEAKENINGS

    for weakening in WEAKENINGS.values():
        print(f"{weakening.name:22} [{weakening.plan_item}] removes {weakening.removes}")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .verify import VerifyArgs, verify

    only = tuple(name.strip() for name in (args.only or "").split(",") if name.strip())
    return verify(VerifyArgs(tries=args.tries, duration_s=args.duration, only=only, scenario=args.scenario,
                             out_dir=Path(args.out) if args.out else None, backend=args.backend,
                             source=args.source, all_on=not args.no_all_on))


def _cmd_reproduce(args: argparse.Namespace) -> int:
    """A violation of a run -> the few requests that break it, shrunk, as a pytest file."""
    import shlex

    from .reproduce import ReplayError, ReproduceOptions, SelectionError, reproduce

    options = ReproduceOptions(
        violation=args.violation, tries=args.tries, min_rate=args.min_rate, shrink_budget_s=args.shrink_budget,
        shrink=not args.no_shrink, check_fixed=not args.no_fixed, out_dir=Path(args.out) if args.out else None,
        app_command=tuple(shlex.split(args.app_command)) if args.app_command else None,
        time_test=not args.no_time_test,
    )
    try:
        figures = reproduce(args.run_dir, options)
    except (SelectionError, ReplayError) as exc:
        print(f"stormproof: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK if figures["after"]["reproduced"] else EXIT_VIOLATION


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stormproof", description="Chaos and load testing for multi-tenant web backends."
    )
    parser.add_argument("--version", action="version", version=f"stormproof {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start PostgreSQL, Redis and the reference app; print endpoints")
    up.add_argument("--backend", choices=["local", "docker"], default="local",
                    help="local processes (default) or containers through testcontainers (see docker/README.md)")
    up.add_argument("--app-command", default=None,
                    help="run this backend instead of the reference app ({host} and {port} are replaced)")
    up.add_argument("--weaken", default="", help="comma-separated fixes to switch off (see `stormproof weakenings`)")
    up.add_argument("--app-workers", type=_count(1), default=None, help="uvicorn worker processes")
    up.add_argument("--task-workers", type=_count(0), default=None,
                    help="Celery worker processes (0: no background work)")
    up.add_argument("--tenants", type=_count(1), default=None, help="seeded tenants")
    up.add_argument("--reps", type=_count(1), default=None, help="sales reps per tenant")
    up.add_argument("--appointments", type=_count(1), default=None, help="appointments per tenant")
    up.add_argument("--json", action="store_true",
                    help="print one JSON object with every endpoint and token, once the stack is ready")
    up.add_argument("--json-file", metavar="PATH", default=None,
                    help="write that JSON object to PATH once the stack is ready (atomically: the file appears "
                         "whole or not at all), and remove it when the stack stops")
    up.add_argument("--duration", type=_seconds, default=None, help="stop after this many seconds (default: Ctrl-C)")
    up.set_defaults(func=_cmd_up)

    doctor = sub.add_parser("doctor", help="check binaries and that PostgreSQL and Redis start here")
    doctor.set_defaults(func=_cmd_doctor)

    listing = sub.add_parser("list", help="list the built-in scenarios")
    listing.set_defaults(func=_cmd_list)

    run = sub.add_parser("run", help="run a scenario end to end: stack, load, faults, checks, report")
    run.add_argument("scenario", nargs="?", help="a scenario name (`stormproof list`) or a path to a .toml file")
    run.add_argument("--all", action="store_true", help="run every built-in scenario, one after another")
    run.add_argument("--duration", type=float, default=None, help="seconds of load (default: the scenario's)")
    run.add_argument("--users", type=int, default=None, help="concurrent users (default: the scenario's)")
    run.add_argument("--seed", type=int, default=None, help="seed of the users' choices and random faults")
    run.add_argument("--backend", choices=["local", "docker"], default="local")
    run.add_argument("--weaken", default="", help="fixes to switch off for this run (comma-separated)")
    run.add_argument("--workers", type=int, default=None, help="Locust worker processes (default: the scenario's)")
    run.add_argument("--out", default="reports", help="where run directories go (default: reports/)")
    run.add_argument("--junit", default=None, metavar="PATH",
                     help="also write one junit.xml combining every run's suites (for CI)")
    run.add_argument("--quiet", action="store_true", help="no progress line while running")
    run.add_argument("--app-command", default=None,
                     help="your own backend instead of ours, started here behind the proxies "
                          "(e.g. 'myapp serve --port {port}'; it gets DATABASE_URL, REDIS_URL, PORT... in its environment)")
    run.add_argument("--app-url", default=None, help="your own backend, already running (the 'external' backend)")
    run.add_argument("--database-url", default=None, help="with --app-url: its database, where the checks read")
    run.add_argument("--jwt-secret", default=None,
                     help="with --app-url: the key your backend verifies tokens with (default $STORMPROOF_JWT_SECRET)")
    run.set_defaults(func=_cmd_run)

    for name, (module, what) in _DELEGATED.items():
        sub.add_parser(name, help=f"run {what} (`stormproof {name} --help`)", add_help=False)

    judged = sub.add_parser("check", help="judge histories recorded by plain Locust: verdict, result.json, report")
    judged.add_argument("history_dir", metavar="DIR", help="the histories' directory (Locust writes stormproof-history/)")
    judged.add_argument("--stack", required=True, metavar="stack.json",
                        help="the connection file of the running stack (`stormproof up --json-file stack.json`)")
    judged.add_argument("--scenario", default="smoke",
                        help="whose invariants and SLO targets to judge by (default smoke: every invariant)")
    judged.add_argument("--out", default="reports", help="where the run directory goes (default: reports/)")
    judged.set_defaults(func=_cmd_check)

    weak = sub.add_parser("weakenings", help="list the fixes that can be switched off by name")
    weak.set_defaults(func=_cmd_weakenings)

    check = sub.add_parser("verify",
                           help="the sensitivity matrix: every weakening must be caught, every fix on must pass")
    check.add_argument("--tries", type=int, default=3,
                       help="runs per cell and per all-on scenario, each with another seed (default 3)")
    check.add_argument("--duration", type=float, default=None,
                       help="seconds of load per run (default: each scenario's)")
    check.add_argument("--only", default="", help="only the cells that switch off these fixes (comma-separated)")
    check.add_argument("--scenario", default=None, help="only the cells of this scenario")
    check.add_argument("--out", default=None,
                       help="where verify.json, verify.html and runs/ go (default: reports/verify-<time>)")
    check.add_argument("--backend", choices=["local", "docker"], default="local")
    check.add_argument("--source", choices=["all", "scenarios", "promises"], default="all",
                       help="cells from the scenario files' weaken/expect, from the promise table, or both (default)")
    check.add_argument("--no-all-on", action="store_true",
                       help="only the weakened cells: skip the every-fix-on runs (a batch whose false alarms "
                            "the false-alarm soak measures); the verdict then says nothing about false alarms")
    check.set_defaults(func=_cmd_verify)

    rep = sub.add_parser("reproduce", help="replay a run's violation with the few requests that break it; "
                                           "shrink it; write a pytest file")
    rep.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (with result.json and history.jsonl)")
    rep.add_argument("--violation", type=_count(1), default=None,
                     help="which violation, numbered from 1 as in result.json (default: the first reproducible)")
    rep.add_argument("--tries", type=_count(1), default=10, help="replays per measured rate (default 10)")
    rep.add_argument("--min-rate", type=float, default=0.9,
                     help="rate a shrunk case must keep (default 0.9, on 3 replays per candidate)")
    rep.add_argument("--shrink-budget", type=_seconds, default=90.0, help="seconds for shrinking (default 90)")
    rep.add_argument("--no-shrink", action="store_true", help="keep every selected request and fault")
    rep.add_argument("--no-fixed", action="store_true", help="skip the replays against the app with every fix on")
    rep.add_argument("--out", default=None, help="where the test goes (default: RUN_DIR/reproduce-N)")
    rep.add_argument("--no-time-test", action="store_true",
                     help="do not run the written pytest file once to print its wall time")
    rep.add_argument("--app-command", default=None,
                     help="start this backend instead of the reference app (kept in the pytest file)")
    rep.set_defaults(func=_cmd_reproduce)
    return parser


_DELEGATED = {
    "proxy": ("stormproof.harness.faults", "the Toxiproxy-compatible fault proxy server"),
    "shunya": ("stormproof.harness.shunya", "the Shunya stub (the upstream analysis service)"),
    "report": ("stormproof.harness.report.cli", "re-render run reports, or an index of runs (`--index OUT DIR...`)"),
}


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix and say how: their message is the whole story."""
    from stormproof.reference_app.settings import SettingsError
    from stormproof.reference_app.weaken import UnknownWeakeningError

    from .plan import PlanError
    from .report.result import ResultError
    from .stack import StackError

    return (PlanError, StackError, SettingsError, UnknownWeakeningError, ResultError, ValueError, OSError)


def _traceback_file(command: str, exc: BaseException) -> Path:
    """Write ``exc``'s traceback to a log file of its own; the one-line message names it."""
    import tempfile
    import traceback

    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = Path(tempfile.gettempdir()) / f"stormproof-{command or 'cli'}-{stamp}-{os.getpid()}.log"
    path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return path


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else ""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if command in _DELEGATED:
            import importlib

            module = importlib.import_module(_DELEGATED[command][0])
            return int(module.main(argv[1:]))
        args = _parser().parse_args(argv)
        return int(args.func(args))
    except KeyboardInterrupt as stop:
        if command in _SERVING:
            print("stopped; services shut down and their data removed", file=sys.stderr)
            return EXIT_OK
        print("stopped before the verdict: services shut down and their data removed; this is not a pass",
              file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, _Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:  # `stormproof list | head`: the reader left early, nothing went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - one clear line, never a traceback on the terminal
        from stormproof.reference_app.weaken import UnknownWeakeningError

        from .plan import PlanError

        if isinstance(exc, (PlanError, UnknownWeakeningError)):  # bad input: the message names it and the fix
            print(f"stormproof: error: {_one_line(str(exc))}", file=sys.stderr)
            return EXIT_ERROR
        log_file = _traceback_file(command, exc)
        if isinstance(exc, _user_errors()):
            print(f"stormproof: error: {_one_line(str(exc))} (details: {log_file})", file=sys.stderr)
        else:
            print(f"stormproof: error: {type(exc).__name__}: {_one_line(str(exc))} (unexpected: please report it "
                  f"with the traceback in {log_file})", file=sys.stderr)
        return EXIT_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
