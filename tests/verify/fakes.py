"""A fake runner for the matrix tests: a real RunResult and run directory, no stack.

Each run's verdicts come from a script: (scenario, weakenings, seed) -> {invariant: status},
plus an optional run error. Its history has two calls, the second one completing at
``VIOLATION_AT_S``, and every invalid verdict cites that call, so the time to first
violation is known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stormproof.harness.history import History, Op, write_history
from stormproof.harness.invariants.verdict import Verdict, Violation
from stormproof.harness.report import RunFiles, RunInfo, ScenarioInfo, SLOTargets, build_result, write_result
from stormproof.harness.runner import RunOptions, RunOutcome
from stormproof.scenarios import Scenario

S = 1_000_000_000
VIOLATION_AT_S = 3.5

Script = Callable[[str, tuple[str, ...], int], tuple[Mapping[str, str], str | None]]


def history() -> History:
    return History((
        Op(0, "invoke", "user-1", "appointment.read", "c1", time_ns=1 * S),
        Op(1, "ok", "user-1", "appointment.read", "c1", status=200, time_ns=int(1.2 * S), invoke_index=0),
        Op(2, "invoke", "user-2", "probe.cross_tenant", "c2", time_ns=2 * S),
        Op(3, "ok", "user-2", "probe.cross_tenant", "c2", status=200, time_ns=int(VIOLATION_AT_S * S),
           invoke_index=2),
    ))


@dataclass
class FakeRunner:
    script: Script
    calls: list[tuple[str, tuple[str, ...] | None, int, float | None]] = field(default_factory=list)

    def __call__(self, scenario: Scenario, options: RunOptions) -> RunOutcome:
        seed = options.seed if options.seed is not None else scenario.seed
        self.calls.append((scenario.name, options.weakenings, seed, options.duration_s))
        statuses, error = self.script(scenario.name, tuple(options.weakenings or ()), seed)
        verdicts = []
        for invariant in scenario.invariants:
            status = statuses.get(invariant, "valid")
            violations = (Violation(invariant, "broken", (2,)),) if status == "invalid" else ()
            verdicts.append(Verdict(invariant, status, "safety", violations,  # type: ignore[arg-type]
                                    {"violations": len(violations)},
                                    "not exercised: nothing to judge" if status == "unknown" else None))
        run_dir = Path(options.out_dir) / f"{scenario.name}-{len(self.calls)}"
        run_dir.mkdir(parents=True)
        write_history(history(), run_dir / "history.jsonl")
        result = build_result(
            ScenarioInfo(scenario.name, "", seed, options.duration_s or scenario.duration_s, 1, 1.0, {}, (),
                         scenario.invariants, SLOTargets(0.01, 200.0)),
            RunInfo(run_dir.name, "2026-11-30T00:00:00+00:00", "2026-11-30T00:00:05+00:00", 5.0, "local",
                    tuple(options.weakenings or ()), "stormproof run x", "0", None, "host"),
            verdicts, history(), files=RunFiles(), error=error)
        write_result(run_dir, result)
        return RunOutcome(run_dir, result)


def catches_everything(name: str, weaken: tuple[str, ...], seed: int) -> tuple[Mapping[str, str], str | None]:
    """Every expected invariant breaks when weakened; everything holds with every fix on."""
    from stormproof.scenarios import load_scenario

    return ({i: "invalid" for i in load_scenario(name).expect} if weaken else {}), None
