"""``stormproof report``: re-rendering a run from its files, and writing the index."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stormproof.harness.report.cli import main
from tests.report.runs import RecordedRun


def test_rerender_a_run_from_its_files(recorded: dict[str, RecordedRun], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(recorded["violation"].run_dir, run_dir)
    original = (run_dir / "report.html").read_text(encoding="utf-8")
    (run_dir / "report.html").unlink()
    (run_dir / "junit.xml").unlink()

    assert main([str(run_dir)]) == 0

    again = (run_dir / "report.html").read_text(encoding="utf-8")
    assert (run_dir / "junit.xml").is_file()
    strip = lambda text: text[: text.index("report generated")]  # noqa: E731 - only the timestamp differs
    assert strip(again) == strip(original)
    assert str(run_dir / "report.html") in capsys.readouterr().out


def test_rerender_without_history_warns_but_renders(recorded: dict[str, RecordedRun], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(recorded["pass"].run_dir, run_dir)
    (run_dir / "history.jsonl").unlink()
    assert main([str(run_dir)]) == 0
    assert "rendered without history" in capsys.readouterr().err
    assert "PASS" in (run_dir / "report.html").read_text(encoding="utf-8")


def test_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no result.json" in capsys.readouterr().err


def test_index_option(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    out = tmp_path / "index.html"
    assert main(["--index", str(out), str(recorded["pass"].run_dir), str(recorded["other"].run_dir)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "session-start-storm" in text and "webhook-duplicates" in text
