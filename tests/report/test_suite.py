"""run --all's end: the summary table, one combined junit.xml, the ``latest`` links."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from stormproof.harness.report import load_result
from stormproof.harness.report.suite import (
    combined_junit,
    link_latest,
    render_summary,
    suite_row,
    write_combined_junit,
)
from tests.report.runs import RecordedRun


def test_summary_has_one_line_per_run_with_the_runs_own_numbers(recorded: dict[str, RecordedRun]) -> None:
    rows = [suite_row(r.scenario, load_result(r.run_dir), r.run_dir) for r in recorded.values()]
    rows.append(suite_row("never-started", None, None))
    table = render_summary(rows).splitlines()
    assert table[0].split() == ["scenario", "verdict", "violations", "requests", "p95", "ms", "duration", "s"]
    violating = load_result(recorded["violation"].run_dir)
    line = next(row for row in table if row.startswith("session-start-storm") and "VIOLATION" in row)
    assert line.split()[2] == str(violating.violation_count) and violating.violation_count > 0
    assert line.split()[3] == str(violating.stats["requests"])
    assert next(row for row in table if row.startswith("never-started")).split()[1:3] == ["ERROR", "0"]
    assert table[-1] == "4 scenario(s): 1 error, 2 pass, 1 violation"


def test_combined_junit_holds_every_runs_suites_and_sums_their_counts(recorded: dict[str, RecordedRun],
                                                                     tmp_path: Path) -> None:
    dirs = [r.run_dir for r in recorded.values()]
    path = write_combined_junit(tmp_path / "ci" / "junit.xml", dirs, [("broken", "did not start: no Docker")])
    root = ET.parse(path).getroot()
    own = [ET.parse(d / "junit.xml").getroot() for d in dirs]
    expected_suites = sum(len(list(doc.iter("testsuite"))) for doc in own) + 1
    assert len(root.findall("testsuite")) == expected_suites
    assert int(root.get("tests", "")) == sum(int(doc.get("tests", "0")) for doc in own) + 1
    assert int(root.get("failures", "")) == sum(int(doc.get("failures", "0")) for doc in own) > 0
    assert int(root.get("errors", "")) == sum(int(doc.get("errors", "0")) for doc in own) + 1
    broken = root.find("testsuite[@name='stormproof.broken']")
    assert broken is not None and "no Docker" in ET.tostring(broken, encoding="unicode")


def test_a_missing_junit_is_an_error_suite_not_a_pass(tmp_path: Path) -> None:
    root = ET.fromstring(combined_junit([tmp_path / "gone"]).split("\n", 1)[1])
    assert root.get("errors") == "1" and root.get("failures") == "0"


def test_latest_points_at_the_newest_run_of_each_scenario(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    out = tmp_path / "reports"
    older, newer = out / "storm-1", out / "storm-2"
    older.mkdir(parents=True)
    newer.mkdir()
    link_latest(out, "storm", older)
    link = link_latest(out, "storm", newer)
    assert link == out / "latest" / "storm" and link.is_symlink()
    assert os.readlink(link) == "../storm-2" and link.resolve() == newer.resolve()
    assert sorted(p.name for p in (out / "latest").iterdir()) == ["storm"]  # no temporary link left
