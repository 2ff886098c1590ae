"""The matrix's logic with a fake runner: which runs happen, what counts as caught, the exit code."""

from __future__ import annotations

import json

import pytest

from stormproof.harness.verify import VerifyArgs, build_cells, exit_code, run_matrix, select_cells, verify
from stormproof.harness.verify.outcome import AllOnResult, CellResult, Matrix, Try
from stormproof.scenarios import load_scenario, scenario_names

from .fakes import VIOLATION_AT_S, FakeRunner, catches_everything


def _all():
    return {n: load_scenario(n) for n in scenario_names()}


def _run(tmp_path, script, only=("tenant-guard",), tries=3):
    scenarios = _all()
    cells = select_cells(build_cells(scenarios.values()), only=only)
    runner = FakeRunner(script)
    cell_results, all_on = run_matrix(cells, scenarios, tries=tries, out_dir=tmp_path, duration_s=5, runner=runner)
    matrix = Matrix(cell_results, all_on, tries, 5, "local", "t0", "t1", 1.0, "stormproof verify")
    return matrix, runner


def test_each_cell_runs_weakened_then_all_on_with_different_seeds(tmp_path) -> None:
    matrix, runner = _run(tmp_path, catches_everything)
    seed = load_scenario("tenant-probe").seed
    assert runner.calls == (
        [("tenant-probe", ("tenant-guard",), seed + i, 5) for i in range(3)]
        + [("tenant-probe", None, seed + i, 5) for i in range(3)]
    )
    (cell,) = matrix.cells
    assert (cell.caught, len(cell.tries), cell.escaped) == (3, 3, False)
    assert cell.median_first_violation_s == pytest.approx(VIOLATION_AT_S)
    assert all(t.run_dir and t.run_dir.startswith("runs/") for t in cell.tries)
    assert matrix.all_on[0].passed == 3
    assert exit_code(matrix) == 0


def test_a_single_escaped_try_fails_the_matrix(tmp_path) -> None:
    def second_try_escapes(name, weaken, seed):
        if weaken and seed == load_scenario(name).seed + 1:
            return {}, None
        return catches_everything(name, weaken, seed)

    matrix, _ = _run(tmp_path, second_try_escapes)
    (cell,) = matrix.cells
    assert (cell.caught, cell.escaped) == (2, True)
    assert "tenant-isolation was valid" in cell.tries[1].reason
    assert exit_code(matrix) == 1


@pytest.mark.parametrize("weakened, error, words", [
    ({"tenant-isolation": "unknown"}, None, "tenant-isolation was unknown (not exercised"),
    ({"tenant-isolation": "invalid"}, "Locust exited with 1", "the run failed: Locust exited with 1"),
])
def test_unknown_or_a_failed_run_is_an_escape(tmp_path, weakened, error, words) -> None:
    matrix, _ = _run(tmp_path, lambda n, w, s: (weakened, error) if w else ({}, None), tries=1)
    assert matrix.cells[0].escaped and words in matrix.cells[0].tries[0].reason
    assert exit_code(matrix) == 1


def test_an_all_on_failure_fails_the_matrix(tmp_path) -> None:
    def all_on_breaks(name, weaken, seed):
        return ({"tenant-isolation": "invalid"}, None)

    matrix, _ = _run(tmp_path, all_on_breaks, tries=1)
    assert not matrix.cells[0].escaped
    assert matrix.all_on[0].failed and "tenant-isolation invalid" in matrix.all_on[0].tries[0].reason
    assert exit_code(matrix) == 1


def test_a_cell_with_a_problem_escapes_without_running() -> None:
    from stormproof.harness.verify import Cell

    cell = Cell(("consent-check",), "tenant-probe", ("consent-before-processing",), ("promise F1",), "not checked")
    matrix = Matrix((CellResult(cell, ()),), (AllOnResult("tenant-probe", (Try(6, True, "pass", "pass"),)),),
                    1, None, "local", "t0", "t1", 0.0, "x")
    assert exit_code(matrix) == 1


def test_verify_writes_json_and_page_and_returns_the_exit_code(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = verify(VerifyArgs(tries=2, duration_s=5, only=("tenant-guard",), out_dir=out),
                  runner=FakeRunner(catches_everything), promises=(), echo=lambda line: None)
    assert code == 0
    data = json.loads((out / "verify.json").read_text())
    assert data["verdict"] == "pass" and data["summary"]["cells"] == 1
    assert data["command"] == "stormproof verify --tries 2 --duration 5 --only tenant-guard"
    assert (out / "verify.html").is_file()
    printed = capsys.readouterr().out
    assert "tenant-guard  tenant-probe  2/2" in printed and "verify: PASS" in printed


def test_no_all_on_runs_only_the_weakened_cells_and_says_so(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    runner = FakeRunner(catches_everything)
    code = verify(VerifyArgs(tries=2, duration_s=5, only=("tenant-guard",), out_dir=out, all_on=False),
                  runner=runner, promises=(), echo=lambda line: None)
    assert code == 0
    assert [weaken for _, weaken, _, _ in runner.calls] == [("tenant-guard",), ("tenant-guard",)]
    data = json.loads((out / "verify.json").read_text())
    assert data["all_on"] == [] and data["command"].endswith("--no-all-on")
    assert "all fixes on: not run (--no-all-on)" in capsys.readouterr().out


@pytest.mark.parametrize("args, words", [
    (VerifyArgs(tries=0), "--tries"),
    (VerifyArgs(duration_s=0), "--duration"),
    (VerifyArgs(only=("nope",)), "unknown weakening"),
])
def test_bad_input_raises_before_any_run(tmp_path, args, words) -> None:
    from stormproof.harness.verify import VerifyError

    runner = FakeRunner(catches_everything)
    with pytest.raises(VerifyError, match=words):
        verify(args, runner=runner, promises=())
    assert runner.calls == []


def test_the_cli_answers_bad_input_with_exit_2(capsys) -> None:
    from stormproof.harness.cli import main

    assert main(["verify", "--only", "tenant-gaurd"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stormproof: error: --only: unknown weakening(s) tenant-gaurd") and err.count("\n") == 1


def test_rows_no_all_on_try_exercised_in_their_own_scenario_fail_verify(tmp_path, capsys) -> None:
    """A row that names a scenario as where it is at risk, yet no all-on try of it exercised (count 0 in every
    try, one extra try included): listed as the scenario's idle promises in the table and verify.json, and verify
    fails (the scenario does less than its rows say: a weakening of the row would escape there)."""
    scenarios = _all()
    cells = select_cells(build_cells(scenarios.values()), only=("tenant-guard",))
    at_risk = {"tenant-probe": ["D2.not-found-not-forbidden", "E5.malformed-refused"]}
    runner = FakeRunner(catches_everything)
    _, all_on = run_matrix(cells, scenarios, tries=2, out_dir=tmp_path, duration_s=5, runner=runner, at_risk=at_risk)
    (result,) = all_on
    assert result.idle == ("E5.malformed-refused",)  # the fake's history sends cross-tenant probes, no bad body
    seed = scenarios["tenant-probe"].seed
    assert [c[2] for c in runner.calls if c[1] is None] == [seed, seed + 1, seed + 2]  # one more before "idle"
    assert result.passed == 3 and result.failed
    assert result.to_dict()["idle_promises"] == ["E5.malformed-refused"]
    from stormproof.harness.verify.table import render_table

    matrix = Matrix((), all_on, 2, 5, "local", "t0", "t1", 1.0, "stormproof verify")
    table = render_table(matrix)
    assert "tenant-probe: E5.malformed-refused" in table and "--duration 5" in table
    assert exit_code(matrix) == 1


def test_a_row_the_extra_try_exercises_is_not_idle(tmp_path) -> None:
    """Only the extra try meets the row's situation (a rare one, missed by chance): no failure, no false alarm."""
    from dataclasses import replace

    scenarios = _all()
    cells = select_cells(build_cells(scenarios.values()), only=("tenant-guard",))
    fake = FakeRunner(catches_everything)

    def runner(scenario, options):
        outcome = fake(scenario, options)
        if options.weakenings or options.seed != scenario.seed + 2:
            return outcome
        rare = ({"promise": "E5.malformed-refused", "count": 1, "status": "valid"},)
        return type(outcome)(outcome.run_dir, replace(outcome.result, coverage=outcome.result.coverage + rare))

    _, all_on = run_matrix(cells, scenarios, tries=2, out_dir=tmp_path, duration_s=5, runner=runner,
                           at_risk={"tenant-probe": ["D2.not-found-not-forbidden", "E5.malformed-refused"]})
    (result,) = all_on
    assert result.idle == () and len(result.tries) == 3 and not result.failed


def test_no_extra_try_when_every_row_was_exercised(tmp_path) -> None:
    scenarios = _all()
    cells = select_cells(build_cells(scenarios.values()), only=("tenant-guard",))
    runner = FakeRunner(catches_everything)
    _, all_on = run_matrix(cells, scenarios, tries=2, out_dir=tmp_path, duration_s=5, runner=runner,
                           at_risk={"tenant-probe": ["D2.not-found-not-forbidden"]})
    (result,) = all_on
    assert result.idle == () and len(result.tries) == 2 and not result.failed
