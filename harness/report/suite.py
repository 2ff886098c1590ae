"""A suite of runs (``stormproof run --all``): the summary table, one combined junit.xml, ``latest`` links.

Each number comes from the run's own result (``RunResult.violation_count``,
``stats``); nothing is recounted here. The combined JUnit document is the
runs' own ``junit.xml`` suites side by side under one ``<testsuites>``
root, so a CI view shows every scenario's invariants in one file, exactly as
each run reported them. ``<out>/latest/<scenario>`` is a relative symbolic
link to the newest run directory of that scenario, replaced atomically, so a
nightly job and a reviewer have a stable address.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stormproof.harness.report.render import JUNIT_FILE
from stormproof.harness.report.result import RunResult

__all__ = ["SuiteRow", "combined_junit", "link_latest", "render_summary", "suite_row", "write_combined_junit"]

LATEST_DIR = "latest"


@dataclass(frozen=True)
class SuiteRow:
    scenario: str
    verdict: str
    violations: int
    requests: int
    p95_ms: float | None
    duration_s: float
    run_dir: Path | None


def suite_row(scenario: str, result: RunResult | None, run_dir: Path | None) -> SuiteRow:
    """One line of the summary; a run that produced no result (it did not start) is an ``error`` row."""
    if result is None:
        return SuiteRow(scenario, "error", 0, 0, None, 0.0, run_dir)
    stats = result.stats or {}
    p95 = stats.get("p95_ms")
    return SuiteRow(
        scenario=scenario, verdict=result.verdict, violations=result.violation_count,
        requests=int(stats.get("requests") or 0), p95_ms=float(p95) if isinstance(p95, (int, float)) else None,
        duration_s=float(result.run.duration_s), run_dir=run_dir,
    )


def render_summary(rows: Sequence[SuiteRow]) -> str:
    """The table ``run --all`` ends with, and a closing line counting each verdict."""
    header = ("scenario", "verdict", "violations", "requests", "p95 ms", "duration s")
    body = [
        (r.scenario, r.verdict.upper(), str(r.violations), str(r.requests),
         "-" if r.p95_ms is None else f"{r.p95_ms:.0f}", f"{r.duration_s:.1f}")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def fmt(line: Sequence[str]) -> str:
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(line[2:], widths[2:])]
        return "  ".join(cells).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths]), *(fmt(line) for line in body)]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    lines.append(f"{len(rows)} scenario(s): " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    return "\n".join(lines)


def combined_junit(run_dirs: Iterable[Path], missing: Iterable[tuple[str, str]] = ()) -> str:
    """Every run's junit.xml suites under one root; ``missing`` (scenario, why) become error suites."""
    root = ET.Element("testsuites", name="stormproof")
    for run_dir in run_dirs:
        path = Path(run_dir) / JUNIT_FILE
        try:
            document = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as exc:
            _error_suite(root, Path(run_dir).name, f"{path}: {exc}")
            continue
        suites = [document] if document.tag == "testsuite" else list(document.iter("testsuite"))
        root.extend(suites)
    for scenario, why in missing:
        _error_suite(root, scenario, why)
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _error_suite(root: ET.Element, name: str, why: str) -> None:
    suite = ET.SubElement(root, "testsuite", name=f"stormproof.{name}", tests="1", failures="0", errors="1",
                          skipped="0", time="0")
    case = ET.SubElement(suite, "testcase", name="run", classname=f"stormproof.{name}", time="0")
    ET.SubElement(case, "error", type="run-error", message=why).text = why


def write_combined_junit(path: Path, run_dirs: Iterable[Path], missing: Iterable[tuple[str, str]] = ()) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(combined_junit(run_dirs, missing), encoding="utf-8")
    os.replace(tmp, path)
    return path


def link_latest(out_dir: Path, scenario: str, run_dir: Path) -> Path:
    """Point ``<out_dir>/latest/<scenario>`` at ``run_dir`` (relative, replaced atomically)."""
    latest = Path(out_dir) / LATEST_DIR
    latest.mkdir(parents=True, exist_ok=True)
    link = latest / scenario
    target = os.path.relpath(Path(run_dir).resolve(), latest.resolve())
    tmp = latest / f".{scenario}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)
    return link
