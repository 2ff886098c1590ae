"""A case shrunk onto one app worker: what the written test starts on each run (the session race's file)."""

from __future__ import annotations

from dataclasses import replace

from stormproof.harness.reproduce import Case, Replayer, Step, measure
from stormproof.harness.reproduce.command import one_worker
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


def test_the_session_race_reproduces_on_one_worker_and_not_with_the_fixes() -> None:
    lean = one_worker(RACE)
    assert lean is not None
    with Replayer(lean) as replayer:
        assert replayer.stack.app.workers == 1
        weakened = measure(replayer, lean, 3, kind="history")
    with Replayer(lean, weakenings=()) as fixed:
        passed = measure(fixed, lean, 3)
    assert weakened.reproduced >= 2, weakened
    assert passed.reproduced == 0, passed
