"""Recorded runs shared by the report tests (built once per session: they cost real checking)."""

from __future__ import annotations

import pytest

from tests.report.runs import RecordedRun, make_run


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RecordedRun]:
    """Three rendered runs: a violating and a passing run of one scenario a week apart, and another scenario."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "violation": make_run(root / "20250610-storm-7", scenario="session-start-storm", seed=7, violating=True,
                              started_at="2025-06-10T02:00:00Z"),
        "pass": make_run(root / "20250603-storm-8", scenario="session-start-storm", seed=8, violating=False,
                         started_at="2025-06-03T02:00:00Z"),
        "other": make_run(root / "20250609-hooks-3", scenario="webhook-duplicates", seed=3, violating=False,
                          started_at="2025-06-09T02:00:00Z", users=3),
    }
