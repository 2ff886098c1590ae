"""junit.xml parsed back: one case per invariant and per SLO, failures for invalid, errors for unknown."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from stormproof.harness.invariants import Verdict, Violation
from stormproof.harness.report import build_result, load_result, render_junit
from tests.report.runs import DUP_APPOINTMENT, RecordedRun


def _cases(root: ET.Element) -> dict[str, tuple[str, ET.Element]]:
    return {case.get("name", ""): (suite.get("name", ""), case) for suite in root.iter("testsuite")
            for case in suite.iter("testcase")}


def test_junit_matches_the_results(recorded: dict[str, RecordedRun]) -> None:
    for run in recorded.values():
        result = load_result(run.run_dir)
        root = ET.parse(run.run_dir / "junit.xml").getroot()
        cases = _cases(root)
        assert set(cases) == {v.invariant for v in result.verdicts}
        for verdict in result.verdicts:
            suite, case = cases[verdict.invariant]
            assert suite.endswith(".slo") == (verdict.kind == "slo")
            failures, errors = case.findall("failure"), case.findall("error")
            if verdict.status == "valid":
                assert not failures and not errors
            elif verdict.status == "invalid":
                assert len(failures) == 1 and not errors
                assert verdict.violations[0].message in failures[0].get("message", "")
                for violation in verdict.violations:
                    assert violation.message in (failures[0].text or "")
            else:
                assert len(errors) == 1 and not failures
                assert verdict.error and verdict.error in errors[0].get("message", "")
        for suite in root.iter("testsuite"):
            listed = suite.findall("testcase")
            assert int(suite.get("tests", "-1")) == len(listed)
            assert int(suite.get("failures", "-1")) == sum(1 for c in listed if c.find("failure") is not None)
            assert int(suite.get("errors", "-1")) == sum(1 for c in listed if c.find("error") is not None)
        assert int(root.get("tests", "-1")) == len(cases)


def test_violation_junit_names_the_evidence(recorded: dict[str, RecordedRun]) -> None:
    root = ET.parse(recorded["violation"].run_dir / "junit.xml").getroot()
    _, case = _cases(root)["single-active-session"]
    text = case.find("failure").text or ""  # type: ignore[union-attr]
    assert "2 violation(s)" in text and DUP_APPOINTMENT in text and "[ops #" in text
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["seed"] == "7" and "--weaken session-lock" in (props["command"] or "")


def test_run_error_and_hostile_text(recorded: dict[str, RecordedRun]) -> None:
    base = load_result(recorded["pass"].run_dir)
    hostile = Verdict("tenant-isolation", "invalid", "safety",
                      (Violation("tenant-isolation", "leak \x00\x1b]]><x/>&", (3,)),), {"violations": 1})
    result = build_result(base.scenario, base.run, [hostile], None, error="redis-server \x07 did not start")
    root = ET.fromstring(render_junit(result).encode("utf-8"))
    cases = _cases(root)
    assert cases["run"][1].find("error") is not None
    failure = cases["tenant-isolation"][1].find("failure")
    assert failure is not None and "leak ]]><x/>&" in (failure.get("message") or "")
