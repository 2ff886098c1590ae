"""A case shrunk onto one app worker: what the written test starts on each run (the session race's file)."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from stormproof.harness.invariants import get_checker
from stormproof.harness.runner import capture
from stormproof.harness.reproduce import Case, Replayer, Step, measure
from stormproof.harness.reproduce.command import one_worker
from stormproof.harness.reproduce.replay import tenants_needed
from stormproof.harness.reproduce.steps import describe

APPOINTMENT = "a0000000-0000-0000-0000-000000000000"
RACE = Case(
    invariant="single-active-session",
    steps=(Step(3, 0, "u1", "session.start", "c0", {"appointment_id": APPOINTMENT, "idempotency_key": "k1"},
                201, "ok"),
           Step(5, 0, "u2", "session.start", "c0", {"appointment_id": APPOINTMENT, "idempotency_key": "k2"},
                201, "ok")),
    refs={"c0": "t0", APPOINTMENT: "t0.appointment_ids.1", "k1": "key:0", "k2": "key:1"},
    stack={"app_workers": 2, "task_workers": 0, "tenants": 2, "reps": 3, "appointments": 5,
           "env": {"STORMPROOF_RACE_DELAY_MS": "30"}},
    weakenings=("session-lock", "session-unique-index"),
    source={"scenario": "session-start-storm", "violation": 1, "kind": "history"},
)


def test_one_worker_is_offered_only_where_there_were_more() -> None:
    lean = one_worker(RACE)
    assert lean is not None and lean.stack["app_workers"] == 1 and lean.source["run_app_workers"] == 2
    assert lean.steps == RACE.steps and lean.stack["env"] == RACE.stack["env"]
    assert "app workers: 1 (the run had 2; it reproduced as often on this many)" in describe(lean)
    assert not any(line.startswith("app workers") for line in describe(RACE))
    assert one_worker(lean) is None  # already one
    assert one_worker(replace(RACE, app_command=("myapp", "serve"))) is None  # another backend's workers


def test_an_attempt_seeds_the_tenants_its_requests_name() -> None:
    assert tenants_needed(RACE, 2) == 1
    two = replace(RACE, refs={**RACE.refs, "c1": "t1", "x": "t1.rep_ids.0", "k": "key:3"})
    assert tenants_needed(two, 2) == 2 and tenants_needed(two, 5) == 2
    assert tenants_needed(replace(RACE, refs={"k1": "key:0"}), 3) == 3  # none named: the run's


def test_the_session_race_reproduces_on_one_worker_and_not_with_the_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    lean = one_worker(RACE)
    assert lean is not None
    scrapes: list[object] = []
    real = capture.scrape_metrics
    monkeypatch.setattr(capture, "scrape_metrics", lambda stack: scrapes.append(stack) or real(stack))
    with Replayer(lean) as replayer:
        assert replayer.stack.app.workers == 1
        weakened = measure(replayer, lean, 3, kind="history")
        with psycopg.connect(replayer.stack.check_dsn) as conn:
            companies = conn.execute("SELECT count(*) FROM companies").fetchone()
    # single-active-session reads no metrics: none scraped; each attempt seeded the one tenant named
    assert scrapes == [] and not get_checker("single-active-session").reads_metrics
    assert get_checker("metrics-agree").reads_metrics
    assert companies == (weakened.tries,)
    with Replayer(lean, weakenings=()) as fixed:
        passed = measure(fixed, lean, 3)
    assert weakened.reproduced >= 2, weakened
    assert passed.reproduced == 0, passed
