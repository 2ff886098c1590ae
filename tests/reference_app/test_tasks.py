"""Background tasks on real Celery worker processes: crashes, retries, dead letters, de-duplication."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from .background import analyses, ledger, ledger_settled, metric, shunya_job_id, submit_call, wait_for
from .helpers import auth, sql_rows

FAST = {
    "STORMPROOF_POLL_INTERVAL_MS": "200",
    "STORMPROOF_TASK_BACKOFF_BASE_MS": "50",
    "STORMPROOF_TASK_BACKOFF_CAP_MS": "200",
    "STORMPROOF_TASK_MAX_RETRIES": "2",
}


def _polling_now(app) -> bool:
    """A poll task is running: inside its race window, with its message taken and not acknowledged."""
    rows = sql_rows(app.database_url, "SELECT count(*) FROM task_records WHERE name LIKE %s AND state = 'running'",
                    "%poll%")
    return rows[0][0] > 0


def test_worker_killed_mid_task_neither_loses_nor_duplicates(reference_app) -> None:
    """Every pool process is SIGKILLed while a poll task sits between its check and its write.

    Acks-late puts the message back; the pool restarts; the task runs again, waits out the
    dead holder's lock (TTL 2 s) and applies the result once.
    """
    app = reference_app(
        task_workers=1, worker_concurrency=1,
        env={**FAST, "STORMPROOF_RACE_DELAY_MS": "3000", "STORMPROOF_LOCK_TTL_MS": "2000",
             "STORMPROOF_LOCK_WAIT_MS": "500", "STORMPROOF_TASK_MAX_RETRIES": "10"},
        shunya={"complete_after_ms": 50, "webhook_enabled": False},
    )
    call = submit_call(app, app.tenants[0])
    job_id = shunya_job_id(app, call)
    wait_for(lambda: _polling_now(app), timeout=20, interval=0.05, what="the poll task to start")
    time.sleep(0.5)  # inside the 3 s race window, holding the job lock
    children = app.workers[0].child_pids()
    assert children, "the worker has no pool processes"
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: analyses(app, job_id) >= 1, timeout=60, what="the redelivered task to apply the result")
    settled = wait_for(lambda: ledger_settled(app), timeout=60, what="the ledger to settle")
    attempts = sql_rows(app.database_url, "SELECT max(attempts) FROM task_records WHERE name LIKE %s", "%poll%")[0][0]
    print(f"\n[worker kill] ledger={settled} poll attempts={attempts} analyses={analyses(app, job_id)}")
    assert analyses(app, job_id) == 1
    assert attempts >= 2, "the killed task must have run again"
    assert settled.get("dead_lettered", 0) == 0 and settled.get("dropped", 0) == 0


def test_a_dead_workers_task_comes_back_soon_after_the_visibility_timeout(reference_app) -> None:
    """The whole worker is SIGKILLed mid-task and restarted; only the broker can hand the task out again.

    The outbox is weakened here, so no sweeper re-publishes it: the message sits in kombu's unacked
    hash until a worker looks for messages held past the visibility timeout (4 s). kombu looks only
    every 10 * 10 s by default, so the task came back up to 100 s late; the app now has it look
    every min(10 s, half the timeout).
    """
    app = reference_app(
        ("outbox",), task_workers=1, worker_concurrency=1,
        env={**FAST, "STORMPROOF_RACE_DELAY_MS": "3000", "STORMPROOF_LOCK_TTL_MS": "2000",
             "STORMPROOF_LOCK_WAIT_MS": "500", "STORMPROOF_TASK_MAX_RETRIES": "10",
             "STORMPROOF_BROKER_VISIBILITY_TIMEOUT_SECONDS": "4"},
        shunya={"complete_after_ms": 50, "webhook_enabled": False},
    )
    call = submit_call(app, app.tenants[0])
    job_id = shunya_job_id(app, call)
    wait_for(lambda: _polling_now(app), timeout=20, interval=0.05, what="the poll task to start")
    time.sleep(0.5)  # inside the 3 s race window: the message is taken and not acknowledged
    worker = app.workers[0].fault_target()
    worker.kill()
    worker.start()  # returns once the new worker says ready
    wait_for(lambda: analyses(app, job_id) >= 1, timeout=40, interval=0.2,
             what="the broker to hand the dead worker's task out again (kombu's default look is every 100 s)")
    assert analyses(app, job_id) == 1


def _failing_run(reference_app, weakenings=()):
    app = reference_app(
        weakenings, task_workers=1, worker_concurrency=2, env=FAST,
        shunya={"complete_after_ms": 50, "webhook_enabled": False, "error_rate": 0.6, "seed": 7},
    )
    tenant = app.tenants[0]
    for _ in range(12):
        submit_call(app, tenant)
    return app, wait_for(lambda: ledger_settled(app), timeout=90, interval=0.2, what="every task to finish")


def test_dead_letter_accounting(reference_app) -> None:
    """With 60% of Shunya calls failing and 2 retries allowed, some tasks die: none vanish."""
    app, states = _failing_run(reference_app)
    enqueued = sql_rows(app.database_url, "SELECT count(*) FROM task_records")[0][0]
    dead_letters = sql_rows(app.database_url, "SELECT count(*) FROM dead_letters")[0][0]
    print(f"\n[dlq] enqueued={enqueued} states={states} dead_letters={dead_letters}")
    assert enqueued == states.get("succeeded", 0) + states.get("dead_lettered", 0)
    assert states.get("dead_lettered", 0) > 0, "with 60% failures some task must run out of retries"
    assert dead_letters == states["dead_lettered"]
    assert metric(app, "tasks_finished_total", outcome="dead_lettered") == dead_letters
    assert metric(app, "tasks_enqueued_total") == enqueued

    tenant = app.tenants[0]
    letters = httpx.get(f"{app.url}/api/v1/dead-letters", headers=auth(tenant.manager_token)).json()
    assert len(letters) == dead_letters and all(letter["error"] for letter in letters)
    other = httpx.get(f"{app.url}/api/v1/dead-letters", headers=auth(app.tenants[1].manager_token)).json()
    assert other == []

    httpx.post(f"{app.shunya_url}/admin/config", json={"error_rate": 0})
    retried = httpx.post(f"{app.url}/api/v1/dead-letters/{letters[0]['id']}/retry", headers=auth(tenant.manager_token))
    assert retried.status_code == 200 and retried.json()["status"] == "retried"
    again = httpx.post(f"{app.url}/api/v1/dead-letters/{letters[0]['id']}/retry", headers=auth(tenant.manager_token))
    assert again.status_code == 409
    task_id = retried.json()["retried_task_id"]
    wait_for(lambda: sql_rows(app.database_url, "SELECT state FROM task_records WHERE task_id = %s", task_id)[0][0]
             == "succeeded", timeout=30, what="the retried task to succeed")


def test_a_call_deleted_while_its_job_is_created_ends_its_task_without_a_dead_letter(reference_app) -> None:
    """The job row gone while Shunya creates the job (plan F2's deletion racing the submission): nothing is left
    to poll for and nothing failed, so the task succeeds. It was dead-lettered (an AssertionError, once, no retry),
    which dead-letter-accounting's gave-up-early rule flagged in lifecycle-under-load (2026-12-03)."""
    app = reference_app((), task_workers=1, env=FAST, shunya={"latency_ms": 2000, "webhook_enabled": False})
    call = submit_call(app, app.tenants[0])
    wait_for(lambda: httpx.get(f"{app.shunya_url}/admin/stats").json()["api_calls"] >= 1, timeout=30,
             what="the worker to ask Shunya for the job")
    _execute_sql(app, "DELETE FROM shunya_jobs WHERE call_id = %s", call["id"])
    states = wait_for(lambda: ledger_settled(app), timeout=30, interval=0.2, what="the task to finish")
    assert sql_rows(app.database_url, "SELECT error FROM dead_letters") == [], states
    assert states == {"succeeded": 1}, states


def _execute_sql(app, statement: str, *params: object) -> None:
    import psycopg

    with psycopg.connect(app.database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


def test_weakened_dead_letter_queue_drops_tasks_and_accounting_shows_it(reference_app) -> None:
    app, states = _failing_run(reference_app, ("dead-letter-queue",))
    print(f"\n[dlq weakened] states={states}")
    assert states.get("dropped", 0) > 0
    assert sql_rows(app.database_url, "SELECT count(*) FROM dead_letters")[0][0] == 0


@pytest.mark.parametrize("weakened", [False, True], ids=["dedupe", "dedupe-weakened"])
def test_the_same_work_item_is_not_enqueued_twice(reference_app, weakened) -> None:
    app = reference_app(("task-dedupe",) if weakened else (), task_workers=1,
                        env={"STORMPROOF_POLL_INTERVAL_MS": "60000"},
                        shunya={"complete_after_ms": 60000, "webhook_enabled": False})
    tenant = app.tenants[0]
    call = submit_call(app, tenant)
    shunya_job_id(app, call)  # submitted; its first poll is queued 60 s out
    answers = [
        httpx.post(f"{app.url}/api/v1/calls/{call['id']}/refresh", headers=auth(tenant.manager_token)).json()
        for _ in range(3)
    ]
    polls = sql_rows(app.database_url, "SELECT count(*) FROM task_records WHERE name LIKE %s", "%poll%")[0][0]
    print(f"\n[dedupe weakened={weakened}] refresh answers={answers} poll tasks={polls}")
    if weakened:
        assert polls == 4 and not any(a["deduplicated"] for a in answers)
    else:
        assert polls == 1 and all(a["deduplicated"] for a in answers)
        assert metric(app, "task_dedupe_hits_total") == 3


def test_metrics_agree_with_duplicate_deliveries(reference_app) -> None:
    """The stub sends each webhook 4 extra times: dedupe hits equal the duplicates delivered."""
    app = reference_app(task_workers=1, env={"STORMPROOF_POLL_INTERVAL_MS": "60000"},
                        shunya={"complete_after_ms": 50, "webhook_duplicates": 4})
    tenant = app.tenants[0]
    calls = [submit_call(app, tenant) for _ in range(3)]
    jobs = [shunya_job_id(app, call) for call in calls]

    def delivered() -> list | None:
        records = httpx.get(f"{app.shunya_url}/admin/deliveries").json()["deliveries"]
        ok = [d for d in records if d["ok"]]
        return ok if len(ok) == 15 else None

    ok = wait_for(delivered, timeout=30, what="15 deliveries")
    assert all(analyses(app, job) == 1 for job in jobs)
    hits = metric(app, "webhook_dedupe_hits_total", source="webhook")
    misses = metric(app, "webhook_dedupe_misses_total", source="webhook")
    duplicates = sum(1 for d in ok if d["duplicate"])
    print(f"\n[metrics] deliveries={len(ok)} duplicates={duplicates} hits={hits} misses={misses}")
    assert misses == len(jobs)
    assert hits == duplicates == len(ok) - len(jobs)
    assert ledger(app).get("dead_lettered", 0) == 0


def _tries(app) -> list[tuple[int, list[dict]]]:
    return [(attempts, tries) for attempts, tries in
            sql_rows(app.database_url, "SELECT attempts, tries FROM task_records")]


@pytest.mark.parametrize("weakened", [False, True], ids=["fixed", "weakened"])
def test_ledger_records_each_try_and_the_wait_each_retry_chose(reference_app, weakened: bool) -> None:
    """task_records.tries (plan C1): a start per try, and after a failure the wait chosen, never run before it.

    With the fix the waits after the n-th failure spread over [0, min(cap, base * 2**n)]; with
    ``retry-backoff`` weakened every one is the base delay (50 ms).
    """
    app, _ = _failing_run(reference_app, ("retry-backoff",) if weakened else ())
    waits: list[float] = []
    for attempts, tries in _tries(app):
        starts = [event for event in tries if event["event"] == "start"]
        assert len(starts) == attempts, tries
        for event, following in zip(tries, tries[1:]):
            if event["event"] == "retry":
                assert following["event"] == "start", tries
                assert following["at"] >= event["at"] + event["wait_s"] - 0.05, "ran before its wait was over"
                if event["failure"] is not None and not event["throttled"]:
                    waits.append(event["wait_s"])
                    assert 0 <= event["wait_s"] <= min(0.2, 0.05 * 2 ** (event["failure"] - 1)) + 1e-9
    print(f"\n[tries] weakened={weakened} waits after failures: {len(waits)}, distinct {len(set(waits))}")
    assert len(waits) >= 5, "with 60% failures some tasks must have retried"
    assert (set(waits) == {0.05}) is weakened
