"""Bad input to ``stormproof reproduce``: one line naming cause and fix, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from stormproof.harness.cli import main


def _run(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(["reproduce", *argv])
    except SystemExit as exc:  # argparse refuses bad option values itself, with exit 2
        code = exc.code if isinstance(exc.code, int) else 1
    err = capsys.readouterr().err.strip()
    return code, err


def test_not_a_run_directory(tmp_path: Path, capsys) -> None:
    code, err = _run(capsys, str(tmp_path))
    assert code == 2 and len(err.splitlines()) == 1 and "not a run directory" in err


def test_no_violations(tmp_path: Path, capsys) -> None:
    (tmp_path / "result.json").write_text(json.dumps({"verdicts": [
        {"invariant": "single-active-session", "kind": "safety", "status": "valid", "violations": []}]}))
    (tmp_path / "history.jsonl").write_text("")
    code, err = _run(capsys, str(tmp_path))
    assert code == 2 and len(err.splitlines()) == 1 and "no violations" in err


def test_violation_out_of_range(race_run: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "run"
    shutil.copytree(race_run, copy)
    code, err = _run(capsys, str(copy), "--violation", "999")
    assert code == 2 and len(err.splitlines()) == 1 and "out of range" in err
    code, err = _run(capsys, str(copy), "--violation", "0")
    assert code == 2 and "at least 1" in err
