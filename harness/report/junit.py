"""junit.xml: one test case per invariant and per SLO, so CI shows a run natively.

Mapping (the one CI systems render): ``valid`` passes, ``invalid`` is a
``<failure>`` carrying the violation summary, ``unknown`` is an
``<error>`` (the harness could not decide: a checker crashed or lacked
evidence). A run that stopped with an error adds a ``run`` case with an
``<error>``. Safety and liveness cases are in the suite
``stormproof.<scenario>``, SLO cases in ``stormproof.<scenario>.slo``, so
a CI view can tell correctness from performance at a glance.

ElementTree escapes markup; control characters, which XML 1.0 forbids and
a broken server may well send, are removed first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from stormproof.harness.invariants.verdict import Verdict
from stormproof.harness.report.result import RunResult

__all__ = ["MAX_LISTED", "render_junit"]

#: Violations written out in full in one failure's text (all are counted).
MAX_LISTED = 50

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: object) -> str:
    return _XML_INVALID.sub("", str(text))


def _count(verdict: Verdict) -> int:
    counted = verdict.summary.get("violations")
    return counted if isinstance(counted, int) and not isinstance(counted, bool) else len(verdict.violations)


def _failure_text(verdict: Verdict) -> str:
    lines = [f"{_count(verdict)} violation(s) of {verdict.invariant}"]
    for number, violation in enumerate(verdict.violations[:MAX_LISTED], start=1):
        ops = ", ".join(f"#{op}" for op in violation.ops) or "no ops (final state)"
        lines.append(f"{number}. {violation.message} [ops {ops}]")
    if len(verdict.violations) > MAX_LISTED:
        lines.append(f"... {len(verdict.violations) - MAX_LISTED} more kept in result.json and report.html")
    return "\n".join(lines)


def _case(suite: ET.Element, verdict: Verdict, classname: str) -> None:
    case = ET.SubElement(suite, "testcase", name=_clean(verdict.invariant), classname=_clean(classname), time="0")
    if verdict.status == "invalid":
        first = verdict.violations[0].message if verdict.violations else "invariant violated"
        count = _count(verdict)
        element = ET.SubElement(case, "failure", type="invalid",
                                message=_clean(f"{count} violation(s): {first}"))
        element.text = _clean(_failure_text(verdict))
    elif verdict.status != "valid":
        element = ET.SubElement(case, "error", type="unknown",
                                message=_clean(verdict.error or "the checker could not decide"))
        traceback = verdict.summary.get("traceback")
        element.text = _clean(traceback if isinstance(traceback, str) else verdict.error or "")


def _suite(parent: ET.Element, name: str, verdicts: Sequence[Verdict], result: RunResult,
           run_error: str | None) -> None:
    failures = sum(1 for v in verdicts if v.status == "invalid")
    errors = sum(1 for v in verdicts if v.status not in ("valid", "invalid")) + (run_error is not None)
    suite = ET.SubElement(parent, "testsuite", name=_clean(name), tests=str(len(verdicts) + (run_error is not None)),
                          failures=str(failures), errors=str(errors), skipped="0",
                          time=f"{result.run.duration_s:.3f}", timestamp=_clean(result.run.started_at),
                          hostname=_clean(result.run.host))
    properties = ET.SubElement(suite, "properties")
    for key, value in (("seed", result.scenario.seed), ("backend", result.run.backend),
                       ("weakenings", ",".join(result.run.weakenings)), ("command", result.run.command),
                       ("version", result.run.version), ("commit", result.run.commit or ""),
                       ("verdict", result.verdict)):
        ET.SubElement(properties, "property", name=key, value=_clean(value))
    if run_error is not None:
        case = ET.SubElement(suite, "testcase", name="run", classname=_clean(name), time="0")
        ET.SubElement(case, "error", type="run-error", message=_clean(run_error)).text = _clean(run_error)
    for verdict in verdicts:
        _case(suite, verdict, name)
    ET.SubElement(suite, "system-out").text = _clean(f"replay: {result.run.command}")


def render_junit(result: RunResult) -> str:
    """The JUnit XML document of a run (UTF-8 text with an XML declaration)."""
    base = f"stormproof.{result.scenario.name}"
    correctness = [v for v in result.verdicts if v.kind != "slo"]
    slos = [v for v in result.verdicts if v.kind == "slo"]
    root = ET.Element("testsuites", name=_clean(base))
    _suite(root, base, correctness, result, result.error)
    if slos:
        _suite(root, f"{base}.slo", slos, result, None)
    total = [int(s.get("tests", "0")) for s in root]
    root.set("tests", str(sum(total)))
    root.set("failures", str(sum(int(s.get("failures", "0")) for s in root)))
    root.set("errors", str(sum(int(s.get("errors", "0")) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
