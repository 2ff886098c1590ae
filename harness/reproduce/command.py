"""``stormproof reproduce``: select, replay, measure, shrink, measure again, write the test.

Figures printed (and written to ``reproduce.json`` beside the test): the
case's size before and after shrinking (requests, faults), its reproduction
rate against the run's weakened app before and after, its pass rate against
the app with every fix on, and the seconds each phase took.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from .case import Case
from .pytest_file import write_pytest_file
from .repeat import Rate, measure
from .replay import Replayer
from .select import cites, load_run, select_case
from .shrink import loosened, shrink
from .steps import describe, describe_fault, describe_step

__all__ = ["ReproduceOptions", "attach_reproduce", "reproduce", "reproduce_command", "time_test_file"]


def reproduce_command(run_dir: str | Path, number: int, app_command: Sequence[str] | None = None) -> str:
    """The command line that reproduces violation ``number`` of the run in ``run_dir`` (result.json's ``reproduce``)."""
    parts = ["stormproof", "reproduce", shlex.quote(str(run_dir)), "--violation", str(number)]
    if app_command:
        parts += ["--app-command", shlex.quote(" ".join(app_command))]
    return " ".join(parts)


def attach_reproduce(verdicts: Sequence[Any], run_dir: str | Path,
                     app_command: Sequence[str] | None = None) -> list[Any]:
    """The verdicts with each replayable violation's ``reproduce`` command set (result.json's field).

    Violations are numbered from 1 across the verdicts in order, as ``--violation`` counts them;
    SLO breaches and violations that cite nothing a replay can start from (``select.cites``) get none.
    """
    from dataclasses import replace

    out, number = [], 0
    for verdict in verdicts:
        violations = []
        for violation in verdict.violations:
            number += 1
            replayable = verdict.kind != "slo" and cites(violation.to_dict())
            violations.append(replace(violation, reproduce=reproduce_command(run_dir, number, app_command))
                              if replayable else violation)
        out.append(replace(verdict, violations=tuple(violations)))
    return out


@dataclass(frozen=True)
class ReproduceOptions:
    violation: int | None = None
    #: Replays measuring each rate (weakened before and after shrinking, fixed).
    tries: int = 10
    #: Rate a shrunk candidate must keep, measured on ``shrink_tries`` replays.
    min_rate: float = 0.9
    shrink_tries: int = 3
    shrink_budget_s: float = 90.0
    shrink: bool = True
    check_fixed: bool = True
    out_dir: Path | None = None
    app_command: tuple[str, ...] | None = None
    #: Tries the generated pytest file makes.
    test_tries: int = 3
    #: Run the generated file once against the weakened app and print its wall time.
    time_test: bool = False


def _line(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, file=out, flush=True)
    return say


def reproduce(run_dir: str | Path, options: ReproduceOptions, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Run the whole reproduction; returns the figures (also written to ``reproduce.json``).

    Raises :class:`~.select.SelectionError` on bad input and :class:`~.replay.ReplayError`
    when the stack does not start; the CLI turns both into one line and exit 2.
    """
    say = _line(out)
    record = load_run(run_dir)
    number, case = select_case(record, options.violation, app_command=options.app_command)
    command = reproduce_command(run_dir, number, case.app_command)
    say(f"violation {number} ({case.invariant}): {case.source.get('message')}")
    figures: dict[str, Any] = {"run_dir": str(run_dir), "violation": number, "invariant": case.invariant,
                               "weakenings": list(case.weakenings), "selected": _size(case)}
    say(f"selected {len(case.steps)} request(s) and {len(case.faults)} fault(s) in {len(case.groups)} group(s)")
    began = time.monotonic()
    with ExitStack() as running:
        replayer = running.enter_context(Replayer(case))
        say(f"stack up in {replayer.started_in_s:.1f} s (weakenings: {', '.join(case.weakenings) or 'none'})")
        kind = case.source.get("kind")  # another kind of violation of the invariant is not this one
        before = measure(replayer, case, options.tries, kind=kind)
        say(f"before shrinking: reproduced {before} ({before.seconds / max(before.tries, 1):.2f} s per replay)")
        figures["before"] = _rate(before)
        loose = loosened(case) if options.shrink and before.rate < options.min_rate else None
        if loose is not None:
            rate = measure(replayer, loose, options.tries, kind=kind)
            better = rate.reproduced > before.reproduced
            say(f"the cited requests sent as their group starts (waiting only for what made their ids and for "
                f"consents): reproduced {rate}; {'kept' if better else 'not kept'}")
            figures["loosened"] = {**_rate(rate), "kept": better}
            if better:
                case, before = loose, rate
        lean = one_worker(case) if options.shrink and before.rate < options.min_rate else None
        if lean is not None:
            # State kept in one process (a read cache, an in-memory lock) shows only when the requests meet the
            # same worker: the run's second worker halves the rate, and shrinking at such a rate runs out of
            # time (call-read-cache: 2/5 on the run's two workers, 17 requests left after 30 s; 2026-12-05).
            running.close()
            lean_replayer = running.enter_context(Replayer(lean))
            rate = measure(lean_replayer, lean, options.tries, kind=kind)
            better = rate.reproduced > before.reproduced
            say(f"on one app worker (the run had {case.stack.get('app_workers')}): reproduced {rate}; "
                + ("kept, shrunk there" if better else "not kept"))
            figures["one_worker_first"] = {**_rate(rate), "kept": better}
            if better:
                case, before, replayer = lean, rate, lean_replayer
            else:
                running.close()
                replayer = running.enter_context(Replayer(case))
        small = case
        if options.shrink and before.reproduced:
            result = shrink(case, lambda c: measure(replayer, c, options.shrink_tries, need=options.min_rate, kind=kind)
                            .rate >= options.min_rate, budget_s=options.shrink_budget_s)
            small = result.case
            for step in result.removed_steps:
                say(f"  removed request {describe_step(step, case.refs)}")
            for fault in result.removed_faults:
                say(f"  removed fault   {describe_fault(fault)}")
            say(f"shrunk to {len(small.steps)} request(s), {len(small.faults)} fault(s) in {result.seconds:.1f} s "
                f"({result.tests} tests{', out of time' if result.out_of_time else ''})")
            figures["shrink"] = {"seconds": round(result.seconds, 2), "tests": result.tests,
                                 "out_of_time": result.out_of_time,
                                 "removed_requests": [s.index for s in result.removed_steps],
                                 "removed_faults": [f.label for f in result.removed_faults]}
            after = measure(replayer, small, options.tries, kind=kind)
        else:
            after = before
        say(f"reproducer: {len(small.steps)} request(s), {len(small.faults)} fault(s); reproduced {after} "
            f"against the weakened app ({after.seconds / max(after.tries, 1):.2f} s per replay)")
        figures["after"] = _rate(after)
        figures["shrunk"] = _size(small)
    if options.shrink and after.reproduced and "one_worker_first" not in figures:  # measured there already
        small = _lean_stack(small, options, kind, after, figures, say)
    if options.check_fixed:
        with Replayer(small, weakenings=()) as fixed:
            rate = measure(fixed, small, options.tries)
        passed = rate.tries - rate.reproduced
        say(f"with every fix on: passed {passed}/{rate.tries}")
        figures["fixed"] = {"passed": passed, "tries": rate.tries, "seconds": round(rate.seconds, 2)}
    figures["seconds"] = round(time.monotonic() - began, 1)
    target = Path(options.out_dir) if options.out_dir else Path(run_dir) / f"reproduce-{number}"
    target.mkdir(parents=True, exist_ok=True)
    test = write_pytest_file(small, target, command=command, tries=options.test_tries)
    (target / "steps.txt").write_text("\n".join(describe(small)) + "\n")
    (target / "case.json").write_text(json.dumps(small.to_dict(), indent=1) + "\n")
    figures["test"] = str(test)
    weaken = ",".join(small.weakenings)
    if options.time_test:
        code, seconds = time_test_file(test, weaken)
        verdict = {1: "failed (the bug is there)", 0: "PASSED (did not reproduce)"}.get(code, f"exit {code}")
        say(f"test file: {verdict} in {seconds:.1f} s against the weakened app ({len(small.steps)} request(s), "
            f"{options.test_tries} replay(s) at most, stack start included)")
        figures["test_file"] = {"exit": code, "seconds": round(seconds, 1)}
    (target / "reproduce.json").write_text(json.dumps(figures, indent=1) + "\n")
    say("")
    say("\n".join(describe(small)))
    say("")
    say(f"test   {test}")
    say(f"run it STORMPROOF_WEAKEN={weaken} .venv/bin/python -m pytest {test}   (fails while the bug is there)")
    return figures


#: pytest as the written file's pytest.ini sets it (repeated: a directory with its own configuration
#: keeps it): only our plugin, as the other installed ones cost seconds of imports on every run.
FAST_PYTEST = ("-q", "-p", "no:cacheprovider", "--disable-plugin-autoload", "-p", "stormproof.harness.pytest_plugin")


def time_test_file(test: Path, weaken: str) -> tuple[int, float]:
    """Run a generated file as its docstring says, with ``STORMPROOF_WEAKEN=weaken``: (exit code, wall seconds).

    Its own process, as the user runs it: the wall time includes pytest, the plugin's services and the
    stack start, which is what the user waits for.
    """
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "STORMPROOF_WEAKEN"))}
    if weaken:
        env["STORMPROOF_WEAKEN"] = weaken
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", *FAST_PYTEST, str(test)], env=env, capture_output=True,
                          text=True, timeout=600)
    return done.returncode, time.monotonic() - began


def one_worker(case: Case) -> Case | None:
    """The case on a stack with one app worker, or None when it already has one (or runs another backend).

    The written test starts the app on every run, and each uvicorn worker imports the whole app (about
    1.9 s of CPU): on a shared 2-core machine the second worker is most of the file's start. A race between
    requests the run sent together needs one worker only (the app serves them concurrently), but that is
    measured (:func:`_lean_stack`), not assumed.
    """
    if case.app_command or int(case.stack.get("app_workers", 1)) <= 1:
        return None
    return replace(case, stack={**case.stack, "app_workers": 1},
                   source={**case.source, "run_app_workers": int(case.stack.get("app_workers", 1))})


def _lean_stack(small: Case, options: ReproduceOptions, kind: Any, after: Rate, figures: dict[str, Any],
                say: Callable[[str], None]) -> Case:
    """The shrunk case on one app worker when it reproduces there as often as ``min_rate`` asks (else as is).

    Shrinking the stack like the requests: one more stack start here spares a worker's imports on each
    run of the written test (the session race's file: most of its start on a loaded machine).
    """
    lean = one_worker(small)
    if lean is None:
        return small
    with Replayer(lean) as replayer:
        rate = measure(replayer, lean, options.tries, kind=kind)
    kept = rate.rate >= options.min_rate
    say(f"on one app worker (the run had {small.stack.get('app_workers')}): reproduced {rate}; "
        + ("kept, the test starts one worker" if kept else f"not kept (under {options.min_rate:g})"))
    figures["one_worker"] = {**_rate(rate), "kept": kept}
    return lean if kept else small


def _size(case: Case) -> dict[str, int]:
    return {"requests": len(case.steps), "faults": len(case.faults), "groups": len(case.groups)}


def _rate(rate: Rate) -> dict[str, Any]:
    return {"reproduced": rate.reproduced, "tries": rate.tries, "seconds": round(rate.seconds, 2),
            "per_replay_s": round(rate.seconds / max(rate.tries, 1), 2)}
