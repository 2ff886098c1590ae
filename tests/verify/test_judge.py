"""Time to first violation, read from the run's own evidence."""

from __future__ import annotations

import pytest

from stormproof.harness.invariants.verdict import Verdict, Violation
from stormproof.harness.report import RunInfo, ScenarioInfo, SLOTargets, build_result
from stormproof.harness.verify import Cell, first_violation_s
from stormproof.harness.verify.outcome import CellResult, Try
from stormproof.harness.verify.table import first_violation_text

from .fakes import VIOLATION_AT_S, history


def _result(*violations: Violation, by_type=None):
    verdict = Verdict("x", "invalid", "safety", violations, {"violations": len(violations), "by_type": by_type or {}})
    return build_result(
        ScenarioInfo("s", "", 1, 10, 1, 1.0, {}, (), ("x",), SLOTargets(0.01, 200.0)),
        RunInfo("r", "t0", "t1", 10.0, "local", ("w",), "c", "0", None, "h"), [verdict], history())


def test_a_violation_is_visible_when_the_last_cited_call_completes() -> None:
    # Cites the invoke of the second call: its completion at VIOLATION_AT_S is when it became visible.
    assert first_violation_s(_result(Violation("x", "m", (0, 2))), history(), ["x"]) == pytest.approx(VIOLATION_AT_S)
    # The earliest violation wins, also one only summarised in by_type.
    by_type = {"t": {"count": 9, "first": {"ops": [1]}, "worst": {"ops": [3]}, "last": {"ops": [3]}}}
    assert first_violation_s(_result(Violation("x", "m", (2,)), by_type=by_type), history(), ["x"]) == 1.2


def test_a_violation_of_one_second_is_visible_when_that_second_ends() -> None:
    late = Violation("x", "m", (2,))
    window = Violation("x", "over limit", (), {"type": "over-limit", "second": 1})
    assert first_violation_s(_result(late, window), history(), ["x"]) == 2.0


def test_a_final_state_violation_has_no_time() -> None:
    final = Violation("x", "applied twice", (), {"type": "applied-twice"})
    assert first_violation_s(_result(final), history(), ["x"]) is None
    assert first_violation_s(_result(Violation("x", "m", (2,))), history(), ["other"]) is None
    cell = Cell(("w",), "s", ("x",), ("scenario file",))
    assert first_violation_text(CellResult(cell, (Try(1, True, "violation", "x: 1"),))) == "final state"
    assert first_violation_text(CellResult(cell, (Try(1, False, "pass", "x was valid"),))) == "–"


def _all_on(slo_status: str):
    safety = Verdict("x", "valid", "safety", (), {"violations": 0, "by_type": {}})
    slo = Verdict("slo-error-rate", slo_status, "slo", (), {"violations": 0, "by_type": {}})
    return build_result(
        ScenarioInfo("s", "", 1, 10, 1, 1.0, {}, (), ("x",), SLOTargets(0.01, 200.0)),
        RunInfo("r", "t0", "t1", 10.0, "local", (), "c", "0", None, "h"), [safety, slo], history())


def test_an_all_on_run_breaking_an_slo_passes_unless_a_cell_of_its_scenario_expects_that_slo() -> None:
    from stormproof.harness.verify import judge_all_on

    breached = _all_on("invalid")
    assert breached.verdict == "pass"  # an SLO never decides a run's verdict
    assert judge_all_on(breached) == (True, "pass")
    passed, reason = judge_all_on(breached, ["slo-error-rate"])
    assert not passed and "slo-error-rate invalid" in reason
    assert judge_all_on(_all_on("valid"), ["slo-error-rate"]) == (True, "pass")


def test_a_promise_cell_is_caught_only_where_its_promise_was_exercised() -> None:
    """noisy-tenant's task-limit row was "caught" by the API limit's violations while its load sent no call:
    a try whose run never exercised the cell's promise shows nothing about it."""
    from dataclasses import replace

    from stormproof.harness.verify import judge_weakened

    result = _result(Violation("x", "m", (2,)))
    exercised = replace(result, coverage=({"promise": "P.a", "count": 3}, {"promise": "P.b", "count": 0}))
    assert judge_weakened(exercised, ["x"])[0]  # a scenario file's cell names no promise
    assert judge_weakened(exercised, ["x"], ["P.a"])[0]
    caught, reason = judge_weakened(exercised, ["x"], ["P.a", "P.b"])
    assert not caught and "not exercised in this run: P.b" in reason
    assert judge_weakened(exercised, ["x"], ["P.unknown"])[0]  # a row the run's table did not have: not judged
    cell = Cell(("w",), "s", ("x",), ("scenario file", "promise P.a", "promise P.b"))
    assert cell.promises == ("P.a", "P.b")
