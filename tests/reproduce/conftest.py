"""A real recorded run with a caught session-start race, shared by the reproduce tests.

Recorded once per session by running ``session-start-storm`` briefly against the
app with both of its guards off (real PostgreSQL, Redis, proxies and Locust).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stormproof.harness.runner import RunOptions, run_scenario
from stormproof.scenarios import load_scenario

WEAKEN = ("session-lock", "session-unique-index")


@pytest.fixture(scope="session")
def race_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("race-run")
    outcome = run_scenario(load_scenario("session-start-storm"),
                           RunOptions(duration_s=6, out_dir=out, progress=False, weakenings=WEAKEN))
    verdict = outcome.verdict_of("single-active-session")
    assert verdict is not None and verdict.status == "invalid", (outcome.result.error, verdict)
    return outcome.run_dir
