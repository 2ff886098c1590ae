"""Quiescence against a real stack: PostgreSQL ledger, Redis broker, Celery workers, the Shunya stub.

Each case builds the state it names (drained, lost, still pending) and checks
that :func:`stormproof.harness.runner.quiesce.quiesce` tells them apart by the system's
own state, within a bound measured in seconds, not a fixed clock.
"""

from __future__ import annotations

import time
import uuid

import psycopg

from stormproof.harness.runner.quiesce import OUTBOX_LOCK_CLASS, QuiescePolicy, observe, quiesce, read_outbox
from tests.reference_app.background import ledger_settled, submit_call, wait_for
from tests.reference_app.helpers import sql_rows

FAST = {"STORMPROOF_POLL_INTERVAL_MS": "200", "STORMPROOF_TASK_BACKOFF_BASE_MS": "50",
        "STORMPROOF_TASK_BACKOFF_CAP_MS": "200"}
#: Small bounds so a wrong answer shows in seconds.
POLICY = QuiescePolicy(base_s=5, per_item_s=0.5, stall_s=4, cap_s=60, confirm_s=1, interval_s=0.2)


def _probe(app):
    stack = app.stack
    return stack.check_dsn, stack.redis_url, stack.shunya_admin_url


def test_work_that_drains_ends_quiet(reference_app) -> None:
    app = reference_app(task_workers=1, worker_concurrency=2, env=FAST,
                        shunya={"complete_after_ms": 300, "webhook_enabled": False})
    for _ in range(4):
        submit_call(app, app.tenants[0])
    outcome = quiesce(*_probe(app), POLICY)
    print(f"\n[quiesce drained] {outcome}")
    assert outcome.quiet, outcome
    assert outcome.backlog == 0 and outcome.reason == "idle"
    assert ledger_settled(app), "quiet must mean the ledger has nothing in flight"
    assert observe(*_probe(app)).idle


def test_a_ledger_row_nothing_will_run_is_lost(reference_app) -> None:
    """A task the ledger calls queued, with no broker message and no worker: lost, and said so at once."""
    app = reference_app(tenants=1)
    task_id = uuid.uuid4().hex
    sql_rows(app.database_url, "INSERT INTO task_records (task_id, name, company_id, args, state, attempts, created_at) "
             "VALUES (%s, 'shunya.poll_shunya_job_status', %s, '{}'::jsonb, 'queued', 0, now()) RETURNING task_id",
             task_id, app.tenants[0].company_id)
    started = time.monotonic()
    outcome = quiesce(*_probe(app), POLICY)
    print(f"\n[quiesce lost] {outcome}")
    assert not outcome.quiet
    assert outcome.lost_tasks == frozenset({task_id})
    assert outcome.pending == 0 and outcome.backlog == 1
    assert "1 tasks lost" in outcome.reason and "nothing left that could finish it" in outcome.reason
    assert time.monotonic() - started < POLICY.stall_s + 2, "lost work alone must not wait for the stall window"


def test_a_queued_message_without_worker_is_pending_not_lost(reference_app) -> None:
    """The broker holds the message (no worker runs): it may still finish, so it is pending, never lost."""
    app = reference_app(tenants=1)  # no task workers: the submit task waits in the broker
    submit_call(app, app.tenants[0])
    wait_for(lambda: observe(*_probe(app)).broker.messages > 0, timeout=10, what="the message in the broker")
    outcome = quiesce(*_probe(app), POLICY)
    print(f"\n[quiesce pending] {outcome}")
    assert not outcome.quiet
    assert outcome.lost_tasks == frozenset()
    assert outcome.pending == outcome.backlog == 1
    assert "1 tasks still progressing" in outcome.reason and "nothing moved for 4 s" in outcome.reason


def test_observe_sees_ledger_and_broker_agree(reference_app) -> None:
    app = reference_app(tenants=1)
    submit_call(app, app.tenants[0])
    seen = wait_for(lambda: (o := observe(*_probe(app))).broker.messages and o, timeout=10, what="a broker message")
    assert seen.in_flight and seen.in_flight <= seen.broker.task_ids
    assert seen.orphans == frozenset()


def _lose_the_broker_messages(app) -> None:  # type: ignore[no-untyped-def]
    """What a Redis restart without persistence does to the queue: every waiting message gone."""
    import redis

    client = redis.Redis.from_url(app.stack.redis_url)
    try:
        for key in client.scan_iter(match="shunya*"):
            client.delete(key)
    finally:
        client.close()


def test_an_outbox_row_the_sweeper_never_publishes_again_is_lost(reference_app) -> None:
    """The broker loses a submission's message (no worker had taken it). With the sweeper, it is published again
    within its bound (1 s here): pending, never lost. With the weakening ``outbox-sweep`` it never is: past
    the bound and the slack it is lost, and said so, on the real database's rows and locks."""
    policy = QuiescePolicy(base_s=5, per_item_s=0.5, stall_s=4, cap_s=60, confirm_s=1, interval_s=0.2,
                           redeliver_s=1.0, sweep_slack_s=1.0)
    env = {"STORMPROOF_OUTBOX_REDELIVER_SECONDS": "1"}
    for weakenings, lost in (((), False), (("outbox-sweep",), True)):
        app = reference_app(weakenings, tenants=1, env=env)  # no task workers: nothing takes the message
        submit_call(app, app.tenants[0])
        wait_for(lambda: observe(*_probe(app)).broker.messages > 0, timeout=10, what="the message in the broker")
        _lose_the_broker_messages(app)
        if lost:  # a task a worker runs (its advisory lock held) is the worker's, never the sweeper's
            (task,) = read_outbox(app.stack.check_dsn, 1.0)[2]
            with psycopg.connect(app.stack.check_dsn) as holder:
                holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (OUTBOX_LOCK_CLASS, task))
                assert read_outbox(app.stack.check_dsn, 1.0)[2] == {}
            assert set(read_outbox(app.stack.check_dsn, 1.0)[2]) == {task}
        outcome = quiesce(*_probe(app), policy)
        print(f"\n[quiesce outbox, weakened {weakenings}] {outcome}")
        assert not outcome.quiet
        if lost:
            assert len(outcome.lost_tasks) == 1 and "not published again by the sweeper" in outcome.reason, outcome
        else:
            assert outcome.lost_tasks == frozenset() and outcome.pending == 1, outcome
            assert observe(*_probe(app)).broker.messages > 0, "the sweeper published the message again"
