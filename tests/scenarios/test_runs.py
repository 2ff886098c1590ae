"""Every scenario, run briefly end to end: it passes with every fix on, and it catches its weakening.

This is the proof that the checks can fail: for each scenario meant for a
weakening, the weakened app must show the expected violation. A checker no
scenario can trip is a defect.
"""

from __future__ import annotations

import pytest

from stormproof.harness.runner import RunOptions, run_scenario
from stormproof.scenarios import load_scenario, scenario_names

SHORT = 8.0


@pytest.mark.parametrize("name", scenario_names())
def test_scenario_passes_with_every_fix_on(name: str, tmp_path) -> None:
    scenario = load_scenario(name)
    outcome = run_scenario(scenario, RunOptions(duration_s=SHORT, out_dir=tmp_path, progress=False))
    stats = outcome.result.stats
    print(f"\n[{name}] {outcome.verdict} requests={stats.get('requests')} rps={stats.get('rps')}")
    problems = [(v.invariant, v.status, v.error, [x.message for x in v.violations[:3]])
                for v in outcome.result.verdicts if v.kind != "slo" and v.status != "valid"]
    assert outcome.verdict == "pass", (outcome.result.error, problems)
    assert stats["requests"] > 0
    assert (outcome.run_dir / "report.html").exists() and (outcome.run_dir / "junit.xml").exists()


WEAKENED = [name for name in scenario_names() if load_scenario(name).weaken]


@pytest.mark.parametrize("name", WEAKENED)
def test_scenario_catches_its_weakening(name: str, tmp_path) -> None:
    scenario = load_scenario(name)
    outcome = run_scenario(
        scenario, RunOptions(duration_s=SHORT, out_dir=tmp_path, progress=False, weakenings=scenario.weaken)
    )
    caught = {v.invariant: v for v in outcome.result.verdicts if v.status == "invalid"}
    print(f"\n[{name} weakened {','.join(scenario.weaken)}] {outcome.verdict}: "
          + ", ".join(f"{k}={v.summary.get('violations', len(v.violations))}" for k, v in caught.items()))
    assert outcome.verdict == "violation", outcome.result.error
    assert outcome.exit_code == 1
    for invariant in scenario.expect:
        assert invariant in caught, f"{invariant} did not notice the weakening {scenario.weaken}"
