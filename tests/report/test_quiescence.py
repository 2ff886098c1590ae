"""result.json records how quiescence ended, the schema checks it, and the report's header says it."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import jsonschema

from stormproof.harness.invariants import Quiescence
from stormproof.harness.report import load_result, render_run, result_to_dict, schema_path, write_result
from stormproof.harness.report.result import result_from_dict
from tests.report.runs import RecordedRun

SLOW = Quiescence(False, 90.2, backlog=40, reason="not quiet after 90 s: 40 tasks still progressing (the bound of "
                  "90 s expired)", pending=40)


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(schema_path().read_text(encoding="utf-8")))


def _with(run: RecordedRun, tmp_path: Path, quiescence: Quiescence) -> Path:
    run_dir = tmp_path / run.run_dir.name
    shutil.copytree(run.run_dir, run_dir)
    write_result(run_dir, dataclasses.replace(load_result(run_dir), quiescence=quiescence))
    render_run(run_dir)
    return run_dir


def test_quiescence_round_trips_and_validates(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    run_dir = _with(recorded["pass"], tmp_path, SLOW)
    data = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    assert data["quiescence"] == {"quiet": False, "waited_s": 90.2, "backlog": 40, "reason": SLOW.reason}
    assert not list(_validator().iter_errors(data))
    assert result_from_dict(data).quiescence == dataclasses.replace(SLOW, pending=0)
    bad = copy.deepcopy(data)
    bad["quiescence"]["backlog"] = -1
    assert list(_validator().iter_errors(bad)), "a negative backlog must not validate"
    del bad["quiescence"]["reason"]
    assert list(_validator().iter_errors(bad)), "the reason is required"
    assert result_to_dict(load_result(recorded["pass"].run_dir)).get("quiescence") is None


def test_report_header_says_how_long_quiescence_took(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    quiet = _with(recorded["pass"], tmp_path / "quiet", Quiescence(True, 12.34))
    assert "quiesced in 12.3 s" in (quiet / "report.html").read_text(encoding="utf-8")
    slow = _with(recorded["violation"], tmp_path / "slow", SLOW)
    assert "not quiet after 90 s: 40 tasks still progressing" in (slow / "report.html").read_text(encoding="utf-8")
