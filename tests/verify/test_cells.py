"""Cells from the scenario files and from a promise table; selection by --only and --scenario."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from stormproof.harness.verify import VerifyError, build_cells, select_cells
from stormproof.harness.verify.cells import uncovered_promises
from stormproof.scenarios import load_scenario, scenario_names


@dataclass(frozen=True)
class FakePromise:
    id: str
    invariant: str
    scenarios: tuple[str, ...]
    weaken: tuple[str, ...]


def _scenarios():
    return [load_scenario(n) for n in scenario_names()]


def test_every_scenario_with_a_weakening_is_one_cell_expecting_its_expect() -> None:
    cells = build_cells(_scenarios())
    by_scenario = {c.scenario: c for c in cells}
    weakened = [s for s in _scenarios() if s.weaken]
    assert len(cells) == len(weakened) > 0
    for scenario in weakened:
        cell = by_scenario[scenario.name]
        assert cell.weaken == tuple(sorted(scenario.weaken))
        assert cell.expect == scenario.expect
        assert cell.sources == ("scenario file",)
        assert cell.problem is None
    assert "smoke" not in by_scenario  # no weaken: no cell


def test_promises_merge_into_the_scenario_cell_and_add_their_own() -> None:
    promises = [
        # Same set as session-start-storm's own cell, named in another order: one cell, union of invariants.
        FakePromise("A2.one-active-session", "single-active-session", ("session-start-storm",),
                    ("session-unique-index", "session-lock")),
        FakePromise("B1.replay", "idempotent-replay", ("session-start-storm",),
                    ("session-lock", "session-unique-index")),
        # A new cell: a weakening run in a scenario that has no cell for it.
        FakePromise("D2.probe", "tenant-isolation", ("smoke",), ("tenant-guard",)),
        # No weakening yet: no cell, listed as uncovered.
        FakePromise("E1.no-teeth", "metrics-agree", ("smoke",), ()),
    ]
    cells = build_cells(_scenarios(), promises)
    storm = [c for c in cells if c.scenario == "session-start-storm"]
    assert len(storm) == 1
    assert storm[0].expect == ("single-active-session", "idempotent-replay")
    assert storm[0].sources == ("scenario file", "promise A2.one-active-session", "promise B1.replay")
    smoke = [c for c in cells if c.scenario == "smoke"]
    assert [(c.weaken, c.expect, c.problem) for c in smoke] == [(("tenant-guard",), ("tenant-isolation",), None)]
    assert uncovered_promises(promises) == ("E1.no-teeth",)


def test_a_promise_whose_checker_the_scenario_does_not_run_is_a_cell_with_a_problem() -> None:
    promise = FakePromise("F1.consent", "consent-before-processing", ("tenant-probe",), ("consent-check",))
    (cell,) = [c for c in build_cells(_scenarios(), [promise]) if c.weaken == ("consent-check",)
               and c.scenario == "tenant-probe"]
    assert cell.problem is not None and "does not check consent-before-processing" in cell.problem


@pytest.mark.parametrize("promise, words", [
    (FakePromise("X.1", "tenant-isolation", ("no-such-scenario",), ("tenant-guard",)), "no-such-scenario"),
    (FakePromise("X.2", "tenant-isolation", ("tenant-probe",), ("no-such-fix",)), "no-such-fix"),
])
def test_a_promise_naming_something_unknown_is_an_error(promise: FakePromise, words: str) -> None:
    with pytest.raises(VerifyError, match=words):
        build_cells(_scenarios(), [promise])


def test_select_by_only_and_scenario() -> None:
    cells = build_cells(_scenarios())
    (tenant,) = select_cells(cells, only=("tenant-guard",))
    assert tenant.scenario == "tenant-probe"
    # A fix that breaks things only together with another selects its cells by its own name.
    assert {c.scenario for c in select_cells(cells, only=("session-lock",))} == {"session-start-storm", "db-latency"}
    assert [c.scenario for c in select_cells(cells, scenario="redis-flap")] == ["redis-flap"]
    assert select_cells(cells) == cells


@pytest.mark.parametrize("kwargs, words", [
    ({"only": ("tenant-gaurd",)}, "unknown weakening"),
    ({"scenario": "nope"}, "no scenario named 'nope'"),
    ({"scenario": "smoke"}, "no cell of the matrix matches --scenario smoke"),
    ({"only": ("tenant-guard",), "scenario": "redis-flap"}, "no cell"),
])
def test_bad_selection_is_one_clear_error(kwargs: dict, words: str) -> None:
    with pytest.raises(VerifyError, match=words):
        select_cells(build_cells(_scenarios()), scenarios=scenario_names(), **kwargs)


def test_every_scenario_checks_the_slos_so_an_slo_promise_makes_a_cell_without_a_problem() -> None:
    """Every run adds slo-error-rate and slo-latency-p95 to its scenario's invariants (run_plan.SLO_CHECKS)."""
    promise = FakePromise("E5.errors", "slo-error-rate", ("tenant-probe",), ("redis-fail-open",))
    (cell,) = [c for c in build_cells(_scenarios(), [promise]) if c.weaken == ("redis-fail-open",)]
    assert cell.problem is None and cell.expect == ("slo-error-rate",)
