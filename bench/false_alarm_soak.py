"""False-alarm soak: every built-in scenario with every fix on, N times; any non-pass is a false alarm.

With every fix on, the reference app keeps every promise, so each run must
PASS. One line per scenario: passes/N, the longest quiescence, the longest
run, and for a non-pass the invariants that were invalid or unknown and the
run directory. Exits 1 on any non-pass, 2 on bad arguments.

    scripts/false-alarm-soak.sh                      # every scenario, 5 times
    scripts/false-alarm-soak.sh -n 2 --hog           # one core kept busy meanwhile
    scripts/false-alarm-soak.sh -n 3 --scenarios smoke,redis-flap --backend docker

``--lock PATH`` (default ``$STORMPROOF_HEAVY_LOCK``, else ``/tmp/sp-heavy.lock``
when it exists) takes that file's exclusive flock around each run, so runs
sharing a machine take turns and the figures are measured alone. ``--hog``
starts one bounded busy loop (a process spinning for at most the run's length
plus ten minutes) for each run and kills it, by PID, when the run ends: the
machine then has a core less, as on a busy CI runner.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stormproof.harness.runner import RunOptions, run_scenario
from stormproof.scenarios import load_scenario, scenario_names

DEFAULT_LOCK = "/tmp/sp-heavy.lock"
#: The hog spins at most this long past the run's own duration, whatever happens to this process.
HOG_MARGIN_S = 600


@dataclass
class Tally:
    name: str
    runs: int = 0
    passes: int = 0
    longest_quiescence_s: float = 0.0
    longest_run_s: float = 0.0
    not_quiet: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        quiet = f"{self.longest_quiescence_s:.1f} s" + (f" ({self.not_quiet} not quiet)" if self.not_quiet else "")
        head = (f"{self.name:26} {self.passes}/{self.runs} pass   longest quiescence {quiet:18} "
                f"longest run {self.longest_run_s:.0f} s")
        return head + "".join(f"\n    {failure}" for failure in self.failures)


@contextlib.contextmanager
def _locked(path: str | None) -> Iterator[None]:
    if not path:
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _hog(enabled: bool, bound_s: float) -> Iterator[None]:
    """One core kept busy by a bounded busy loop, stopped by its PID when the block ends."""
    if not enabled:
        yield
        return
    loop = f"import time\nend = time.monotonic() + {bound_s:.0f}\nwhile time.monotonic() < end:\n    pass\n"
    hog = subprocess.Popen([sys.executable, "-c", loop])
    try:
        yield
    finally:
        hog.kill()
        hog.wait(timeout=10)


def _verdict_notes(outcome) -> str:  # type: ignore[no-untyped-def]
    result = outcome.result
    bad = [f"{v.invariant}={v.status}" + (f" ({v.error})" if v.error else "")
           for v in result.verdicts if v.status != "valid"]
    notes = "; ".join(bad) or "no invariant failed"
    if result.error:
        notes += f"; error: {result.error}"
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=5, help="runs per scenario (default 5)")
    parser.add_argument("--scenarios", default=None, help="comma-separated subset (default: every built-in one)")
    parser.add_argument("--hog", action="store_true", help="keep one core busy with a bounded busy loop")
    parser.add_argument("--backend", choices=("local", "docker"), default="local")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load (default: the scenario's)")
    parser.add_argument("--out", default=None, help="where run directories go (default: a new temp dir)")
    parser.add_argument("--lock", default=None, help=f"flock file taken around each run (default {DEFAULT_LOCK})")
    parser.add_argument("--no-lock", action="store_true", help="take no lock")
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="run i uses the scenario's seed + offset + i (default 0: the first run is the seed's)")
    args = parser.parse_args(argv)
    known = scenario_names()
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()] if args.scenarios else known
    unknown = [n for n in names if n not in known]
    if unknown or args.runs < 1:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(known)}" if unknown else "-n must be >= 1")
    lock = None if args.no_lock else (args.lock or os.environ.get("STORMPROOF_HEAVY_LOCK")
                                       or (DEFAULT_LOCK if Path(DEFAULT_LOCK).exists() else None))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="false-alarm-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"# false-alarm soak: {len(names)} scenarios x {args.runs}, backend {args.backend}, "
          f"hog {'on' if args.hog else 'off'}, lock {lock or 'none'}, runs in {out}", flush=True)
    tallies: list[Tally] = []
    started = time.monotonic()
    for name in names:
        scenario = load_scenario(name)
        tally = Tally(name)
        for i in range(args.runs):
            options = RunOptions(duration_s=args.duration, out_dir=out, progress=False, backend=args.backend,
                                 seed=scenario.seed + args.seed_offset + i)
            bound = (args.duration or scenario.duration_s) + HOG_MARGIN_S
            with _locked(lock), _hog(args.hog, bound):
                run_started = time.monotonic()
                outcome = run_scenario(scenario, options)
                took = time.monotonic() - run_started
            tally.runs += 1
            tally.longest_run_s = max(tally.longest_run_s, took)
            quiescence = outcome.result.quiescence
            if quiescence is not None:
                tally.longest_quiescence_s = max(tally.longest_quiescence_s, quiescence.waited_s)
                tally.not_quiet += 0 if quiescence.quiet else 1
            if outcome.verdict == "pass":
                tally.passes += 1
            else:
                tally.failures.append(f"run {i + 1} (seed {options.seed}): {outcome.verdict.upper()}: "
                                      f"{_verdict_notes(outcome)}; {outcome.run_dir}")
        tallies.append(tally)
        print(tally.line(), flush=True)
    total = sum(t.runs for t in tallies)
    passed = sum(t.passes for t in tallies)
    print(f"# {passed}/{total} runs passed in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if passed == total else 1


if __name__ == "__main__":
    sys.exit(main())
