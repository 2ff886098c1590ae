"""Real recorded runs with a caught bug, shared by the reproduce tests.

Recorded once per session by running a scenario briefly against the app with
its guards off (real PostgreSQL, Redis, proxies, Shunya stub and Locust): a
session-start race, and a Shunya job applied twice (by the stub's webhook and the poller).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stormproof.harness.runner import RunOptions, run_scenario
from stormproof.scenarios import load_scenario

WEAKEN = ("session-lock", "session-unique-index")
JOB_WEAKEN = ("job-db-guard",)


def _caught_run(out: Path, scenario: str, duration_s: int, weakenings: tuple[str, ...], invariant: str) -> Path:
    """A short weakened run of ``scenario`` that ``invariant`` caught: what ``reproduce`` starts from."""
    outcome = run_scenario(load_scenario(scenario),
                           RunOptions(duration_s=duration_s, out_dir=out, progress=False, weakenings=weakenings))
    verdict = outcome.verdict_of(invariant)
    assert verdict is not None and verdict.status == "invalid", (outcome.result.error, verdict)
    return outcome.run_dir


@pytest.fixture(scope="session")
def race_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _caught_run(tmp_path_factory.mktemp("race-run"), "session-start-storm", 6, WEAKEN, "single-active-session")


@pytest.fixture(scope="session")
def job_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A caught job double apply: ``pause-past-lock-ttl`` briefly, with the database guard off.

    Its race window is opened deterministically (a barrier of two, longer than the lock's TTL), so
    every run catches it; webhook-poll-storm's chance meetings were missed by a 6 s run under load.
    """
    return _caught_run(tmp_path_factory.mktemp("job-run"), "pause-past-lock-ttl", 8, JOB_WEAKEN, "job-applied-once")
