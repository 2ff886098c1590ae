"""verify.json against its schema; the HTML page: self-contained, linked, and escaping names."""

from __future__ import annotations

import json

import pytest

from stormproof.harness.verify import Cell, matrix_to_dict, render_page, schema_path
from stormproof.harness.verify.outcome import AllOnResult, CellResult, Matrix, Try

try:
    import jsonschema
except ImportError:  # pragma: no cover - the dev extra installs it
    jsonschema = None

HOSTILE = '<script>alert("x")</script>'


def _matrix(name: str = "tenant-probe", reason: str = "tenant-isolation: 3 violation(s)") -> Matrix:
    cell = Cell(("tenant-guard",), name, ("tenant-isolation",), ("scenario file",))
    tries = (Try(6, True, "violation", reason, f"runs/{name}-1", 12.5, 1.9),
             Try(7, False, "pass", "tenant-isolation was valid", f"runs/{name}-2", 12.0, None))
    problem = Cell(("consent-check",), name, ("consent-before-processing",), ("promise F1.x",), "not checked")
    return Matrix(
        cells=(CellResult(cell, tries), CellResult(problem, ())),
        all_on=(AllOnResult(name, (Try(6, True, "pass", "pass", f"runs/{name}-3", 11.0),
                                   Try(7, False, "error", "error: the runner crashed", None, 0.5))),),
        tries=2, duration_s=None, backend="local", started_at="2026-11-30T13:00:00+00:00",
        finished_at="2026-11-30T13:01:00+00:00", wall_s=60.0, command="stormproof verify --tries 2",
        uncovered_promises=("E1.no-teeth",),
    )


def _validate(data: dict) -> None:
    if jsonschema is None:
        pytest.fail("the 'jsonschema' package is missing: add it to the dev extra")
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_path().read_text()))
    jsonschema.Draft202012Validator(json.loads(schema_path().read_text())).validate(data)


def test_verify_json_matches_its_schema() -> None:
    data = json.loads(json.dumps(matrix_to_dict(_matrix())))
    _validate(data)
    assert data["verdict"] == "fail"
    assert data["summary"] == {"cells": 2, "cells_escaped": 2, "scenarios_all_on": 1, "all_on_failed": 1}
    assert data["cells"][0]["caught"] == 1 and data["cells"][0]["median_first_violation_s"] == 1.9


def test_the_schema_rejects_a_broken_file() -> None:
    data = json.loads(json.dumps(matrix_to_dict(_matrix())))
    del data["cells"][0]["caught"]
    with pytest.raises(jsonschema.ValidationError):
        _validate(data)


def test_page_links_each_run_report_and_uses_no_script_or_network() -> None:
    page = render_page(_matrix())
    assert 'href="runs/tenant-probe-1/report.html"' in page
    assert 'href="runs/tenant-probe-3/report.html"' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "1/2 escaped" in page and "1/2 failed" in page and "E1.no-teeth" in page


def test_page_escapes_names_and_reasons() -> None:
    page = render_page(_matrix(name=HOSTILE, reason=f"answer was {HOSTILE}"))
    assert HOSTILE not in page and "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
