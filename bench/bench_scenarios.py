"""Per scenario: requests per second reached and p95, with every fix on and with its weakening.

For the weakened runs, also how many violations were found and how soon: the
time (from the start of the load) of the earliest operation cited by a
violation. Runs every scenario twice (about 1 minute each at the default
duration); ``--duration S`` shortens them, ``--only NAME`` picks some.

    .venv/bin/python bench/bench_scenarios.py --duration 15
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from stormproof.harness.history import load_history
from stormproof.harness.runner import RunOptions, run_scenario
from stormproof.scenarios import load_scenario, scenario_names


def _first_violation_s(run_dir: Path, verdicts) -> float | None:  # type: ignore[no-untyped-def]
    cited = {i for v in verdicts if v.status == "invalid" for x in v.violations for i in x.ops}
    if not cited:
        return None
    times = {op.index: op.time_ns for op in load_history(run_dir / "history.jsonl").ops}
    found = [times[i] for i in cited if i in times]
    return min(found) / 1e9 if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--only", action="append", default=None)
    args = parser.parse_args()
    names = args.only or scenario_names()
    out = Path(tempfile.mkdtemp(prefix="bench-scenarios-"))
    print(f"{'scenario':26} {'weakened':38} {'verdict':9} {'req/s':>7} {'p95 ms':>8} {'violations':>10} {'first at':>9}")
    for name in names:
        scenario = load_scenario(name)
        runs = [()] + ([scenario.weaken] if scenario.weaken else [])
        for weakenings in runs:
            outcome = run_scenario(scenario, RunOptions(duration_s=args.duration, out_dir=out, progress=False,
                                                         weakenings=tuple(weakenings) or None))
            stats = outcome.result.stats
            violations = sum(v.summary.get("violations", len(v.violations)) for v in outcome.result.verdicts
                             if v.status == "invalid" and v.kind != "slo")
            first = _first_violation_s(outcome.run_dir, outcome.result.verdicts) if violations else None
            print(f"{name:26} {','.join(weakenings) or '-':38} {outcome.verdict:9} {stats.get('rps', 0):7.1f} "
                  f"{(stats.get('p95_ms') or 0):8.1f} {violations:10} "
                  f"{(f'{first:.1f}s' if first is not None else '-'):>9}", flush=True)
    print(f"run directories: {out}")


if __name__ == "__main__":
    main()
