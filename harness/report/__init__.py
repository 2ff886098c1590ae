"""Stormproof reports: result.json, report.html, junit.xml and the index of runs.

A run directory holds ``result.json`` (schema in ``result.schema.json``),
``history.jsonl`` and logs; everything a reviewer or CI reads is rendered
from those files, so any run can be re-rendered later:

- ``build_result`` / ``write_result`` / ``load_result``: the result, typed;
- ``summarise_history`` / ``fault_windows`` / ``time_series``: numbers from a history;
- ``render_run``: report.html (self-contained, no script, no network) and junit.xml;
- ``write_index``: the index of runs, newest first, with trends per scenario;
- ``cli.main``: ``stormproof report``.
"""

from stormproof.harness.report.html import JUNIT_FILE, REPORT_FILE, render_report
from stormproof.harness.report.index import INDEX_FILE, find_runs, render_index, write_index
from stormproof.harness.report.junit import render_junit
from stormproof.harness.report.render import Rendered, render_run
from stormproof.harness.report.result import (
    RESULT_FILE,
    SCHEMA_VERSION,
    FaultPlan,
    ResultError,
    RunFiles,
    RunInfo,
    RunResult,
    ScenarioInfo,
    SLOTargets,
    build_result,
    load_result,
    result_from_dict,
    result_to_dict,
    schema_path,
    write_result,
)
from stormproof.harness.report.stats import Series, fault_windows, summarise_history, time_series

__all__ = [
    "INDEX_FILE",
    "JUNIT_FILE",
    "REPORT_FILE",
    "RESULT_FILE",
    "SCHEMA_VERSION",
    "FaultPlan",
    "Rendered",
    "ResultError",
    "RunFiles",
    "RunInfo",
    "RunResult",
    "SLOTargets",
    "ScenarioInfo",
    "Series",
    "build_result",
    "fault_windows",
    "find_runs",
    "load_result",
    "render_index",
    "render_junit",
    "render_report",
    "render_run",
    "result_from_dict",
    "result_to_dict",
    "schema_path",
    "summarise_history",
    "time_series",
    "write_index",
    "write_result",
]
