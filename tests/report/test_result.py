"""result.json: the builder's verdict, the round trip, and validation against the JSON Schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from stormproof.harness.invariants import Verdict, Violation
from stormproof.harness.report import ResultError, build_result, load_result, result_to_dict, schema_path, write_result
from stormproof.harness.report.result import RunFiles, RunInfo
from tests.report.runs import RecordedRun

try:
    import jsonschema
except ImportError:  # pragma: no cover - the test must fail, not skip, without it
    jsonschema = None


def _validator():
    if jsonschema is None:
        pytest.fail("the 'jsonschema' package is missing: add it to the dev extra (pip install jsonschema)")
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _result_json(run: RecordedRun) -> dict:
    return json.loads((run.run_dir / "result.json").read_text(encoding="utf-8"))


def test_written_results_validate_against_the_schema(recorded: dict[str, RecordedRun]) -> None:
    validator = _validator()
    for run in recorded.values():
        errors = sorted(validator.iter_errors(_result_json(run)), key=str)
        assert not errors, f"{run.run_dir}: {errors[0]}"


@pytest.mark.parametrize("breakage", [
    "missing verdict", "wrong schema version", "exit code disagrees", "bad status", "absolute log path",
    "negative requests", "violation without ops",
])
def test_known_bad_results_fail_validation(recorded: dict[str, RecordedRun], breakage: str) -> None:
    validator = _validator()
    data = copy.deepcopy(_result_json(recorded["violation"]))
    if breakage == "missing verdict":
        del data["verdict"]
    elif breakage == "wrong schema version":
        data["schema_version"] = 2
    elif breakage == "exit code disagrees":
        data["exit_code"] = 0
    elif breakage == "bad status":
        data["verdicts"][0]["status"] = "ok"
    elif breakage == "absolute log path":
        data["files"]["logs"] = ["/var/log/app.log"]
    elif breakage == "negative requests":
        data["stats"]["requests"] = -1
    else:
        del data["verdicts"][0]["violations"][0]["ops"]
    assert list(validator.iter_errors(data)), f"{breakage} passed validation"


def test_round_trip_and_verdicts(recorded: dict[str, RecordedRun]) -> None:
    loaded = load_result(recorded["violation"].run_dir)
    assert loaded.verdict == "violation" and loaded.exit_code == 1
    statuses = {v.invariant: v.status for v in loaded.verdicts}
    assert statuses["single-active-session"] == "invalid"
    assert statuses["job-applied-once"] == "unknown"
    assert loaded.overall.status == "invalid"
    assert result_to_dict(loaded) == _result_json(recorded["violation"])
    assert load_result(recorded["pass"].run_dir).verdict == "pass"


def test_load_result_rejects_what_it_cannot_read(tmp_path: Path, recorded: dict[str, RecordedRun]) -> None:
    with pytest.raises(ResultError, match="no result.json"):
        load_result(tmp_path)
    data = _result_json(recorded["pass"])
    data["schema_version"] = 99
    (tmp_path / "result.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ResultError, match="schema_version"):
        load_result(tmp_path)
    data["schema_version"] = 1
    data["exit_code"] = 1
    (tmp_path / "result.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ResultError, match="exit_code"):
        load_result(tmp_path)
    del data["scenario"]["seed"]
    data["exit_code"] = 0
    (tmp_path / "result.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ResultError, match="seed"):
        load_result(tmp_path)


def test_verdict_rules_error_unknown_and_slo(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    base = load_result(recorded["pass"].run_dir)
    valid = Verdict("single-active-session", "valid", "safety")
    unknown = Verdict("job-applied-once", "unknown", "safety", error="call_analyses not in snapshot")
    invalid = Verdict("tenant-isolation", "invalid", "safety", (Violation("tenant-isolation", "leak", (1,)),),
                      {"violations": 1})
    slo_breach = Verdict("slo-error-rate", "invalid", "slo", (Violation("slo-error-rate", "5%", ()),))

    def verdict_of(verdicts, error=None):
        return build_result(base.scenario, base.run, verdicts, None, error=error).verdict

    assert verdict_of([valid, slo_breach]) == "pass"  # SLOs are reported apart
    assert verdict_of([valid, unknown]) == "error"  # unknown is never a pass
    assert verdict_of([unknown, invalid]) == "violation"  # invalid outranks unknown
    assert verdict_of([valid], error="PostgreSQL did not start") == "error"
    result = build_result(base.scenario, base.run, [], None, error="stack failed")
    assert result.stats["requests"] == 0 and result.exit_code == 2
    write_result(tmp_path, result)
    _validator().validate(json.loads((tmp_path / "result.json").read_text()))


def test_nan_and_sets_in_summaries_become_json(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    base = load_result(recorded["pass"].run_dir)
    odd = Verdict("metrics-agree", "valid", "safety", summary={"ratio": float("nan"), "seen": frozenset({"b", "a"})})
    write_result(tmp_path, build_result(base.scenario, base.run, [odd], None))
    summary = json.loads((tmp_path / "result.json").read_text())["verdicts"][0]["summary"]
    assert summary["ratio"] is None and summary["seen"] == ["a", "b"]


def test_run_files_and_backend_are_checked() -> None:
    with pytest.raises(ValueError, match="relative"):
        RunFiles(logs=("../secrets.log",))
    with pytest.raises(ValueError, match="backend"):
        RunInfo("r", "2025-01-01T00:00:00Z", "2025-01-01T00:01:00Z", 60.0, "kubernetes", (), "cmd", "0.1.0", None,
                "h")  # type: ignore[arg-type]
