"""The transactional outbox (issue 14): no task lost when the broker (Redis) loses its messages.

A Redis restart is played here as FLUSHDB on the app's Redis database while
the worker's consumer is stopped (SIGSTOP on its main process), so that the
messages are certainly in Redis, not in the worker, when they are lost: for a
Redis without persistence that is what a restart does to the broker's queue,
its unacknowledged set, the locks and the de-duplication marks. The scenario
``redis-flap-tasks`` restarts the real process under load.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import httpx
import pytest
import redis

from stormproof.reference_app.context import build_context
from stormproof.reference_app.services.outbox import SWEEP_DOUBLINGS
from stormproof.reference_app.settings import Settings
from stormproof.reference_app.worker.celery_app import POLL_TASK, QUEUE, SUBMIT_TASK

from .background import analyses, ledger, ledger_settled, metric, shunya_job_id, submit_call, wait_for
from .helpers import auth, sql_rows

ENV = {
    "STORMPROOF_POLL_INTERVAL_MS": "200",
    "STORMPROOF_OUTBOX_REDELIVER_SECONDS": "2",
    "STORMPROOF_TASK_BACKOFF_BASE_MS": "50",
    "STORMPROOF_TASK_BACKOFF_CAP_MS": "200",
}
SHUNYA = {"complete_after_ms": 100, "webhook_enabled": False}


def _redis(app) -> redis.Redis:
    return redis.Redis.from_url(app.redis_url, socket_timeout=5)


def _outbox(app) -> list[tuple]:
    return sql_rows(app.database_url, "SELECT task_id, name, published_at IS NOT NULL, publications FROM outbox")


# -- the row is part of the business transaction ------------------------------------------


def test_the_outbox_row_commits_and_rolls_back_with_the_business_write(
    stormproof_database, stormproof_redis, reference_app_template
) -> None:
    database = stormproof_database(reference_app_template)
    url = database.sqlalchemy_url
    settings = Settings(database_url=url, redis_url=stormproof_redis.url_for(63), environment="test")
    company = uuid.uuid4()

    async def scenario() -> tuple[str, str]:
        ctx = build_context(settings, pool_size=2)
        try:
            async with ctx.sessions() as session, session.begin():
                kept = await ctx.tasks.enqueue(SUBMIT_TASK, {"job_row_id": "kept"}, company_id=company,
                                               check_rate=False, session=session)
            with pytest.raises(RuntimeError):
                async with ctx.sessions() as session, session.begin():
                    lost = await ctx.tasks.enqueue(SUBMIT_TASK, {"job_row_id": "rolled-back"}, company_id=company,
                                                   check_rate=False, session=session)
                    raise RuntimeError("the business write failed after the enqueue")
            return kept.task_id, lost.task_id
        finally:
            await ctx.aclose()

    kept, lost = asyncio.run(scenario())
    outbox = {row[0] for row in sql_rows(url, "SELECT task_id FROM outbox")}
    records = {row[0] for row in sql_rows(url, "SELECT task_id FROM task_records")}
    assert kept in outbox and kept in records
    assert lost not in outbox and lost not in records, "a rolled-back write must not leave its task behind"


def test_a_submitted_call_and_its_task_commit_together_and_the_relay_publishes_it(reference_app) -> None:
    app = reference_app(task_workers=1, env=ENV, shunya=SHUNYA)
    call = submit_call(app, app.tenants[0])
    job_id = shunya_job_id(app, call)
    wait_for(lambda: analyses(app, job_id) == 1, timeout=30, what="the polls to apply the result")
    settled = wait_for(lambda: ledger_settled(app), timeout=30, what="the ledger to settle")
    wait_for(lambda: not _outbox(app), timeout=10, what="the outbox to empty")
    kwargs = sql_rows(app.database_url, "SELECT args FROM task_records WHERE name = %s", SUBMIT_TASK)[0][0]
    assert kwargs["job_row_id"] == call["job"]["id"]
    assert settled == {"succeeded": 2}, settled  # the submission and its poll (each poll re-arms one task)
    assert metric(app, "outbox_published_total") >= 2
    assert metric(app, "tasks_enqueued_total") == 2
    assert metric(app, "outbox_backlog") == 0 and "outbox_oldest_unpublished_age_seconds" in httpx.get(
        f"{app.url}/metrics").text


# -- the sweeper -----------------------------------------------------------------------------


def test_the_sweeper_backs_off_for_a_message_that_is_only_waiting_in_a_long_queue(
    stormproof_database, stormproof_redis, reference_app_template
) -> None:
    """A row published n times in a row that no worker began is re-armed after bound * 2**(n-1) (capped).

    Without the back-off a queue longer than the bound fed itself: every waiting message was published
    again each bound, lengthening the queue it waited in. The rows are written by hand, aged by their
    published_at, so the rule is judged without waiting for a clock.
    """
    database = stormproof_database(reference_app_template)
    url = database.sqlalchemy_url
    bound = 10
    settings = Settings(database_url=url, redis_url=stormproof_redis.url_for(62), environment="test",
                        outbox_redeliver_seconds=bound)
    # (publications, started_publication, seconds since published, re-armed?)
    cases = {
        "lost-once": (1, 0, bound + 2, True),          # published once, never begun: the broker lost it
        "fresh": (1, 0, bound - 3, False),
        "twice-early": (2, 0, 2 * bound - 3, False),   # published twice unbegun: waits 2 bounds
        "twice-late": (2, 0, 2 * bound + 2, True),
        "begun-then-twice": (7, 5, 2 * bound - 3, False),  # counted since the last begun publication
        "capped": (30, 0, 2 ** SWEEP_DOUBLINGS * bound + 2, True),
        "capped-early": (30, 0, 2 ** SWEEP_DOUBLINGS * bound - 3, False),
    }
    for task_id, (publications, started, age, _) in cases.items():
        sql_rows(url, "INSERT INTO outbox (task_id, name, kwargs, due_at, published_at, publications, "
                      "started_publication, created_at) VALUES (%s, %s, '{}', now() - make_interval(secs => %s), "
                      "now() - make_interval(secs => %s), %s, %s, now()) RETURNING task_id",
                 task_id, POLL_TASK, age + 1, age, publications, started)

    async def sweep() -> int:
        ctx = build_context(settings, pool_size=2)
        try:
            return await ctx.tasks.outbox.sweep()
        finally:
            await ctx.aclose()

    swept = asyncio.run(sweep())
    rearmed = {task_id for task_id, published in sql_rows(url, "SELECT task_id, published_at IS NOT NULL FROM outbox")
               if not published}
    assert rearmed == {task_id for task_id, case in cases.items() if case[3]}
    assert swept == len(rearmed)


# -- a lost broker -------------------------------------------------------------------------


def _lose_the_broker(app, submit: int, *, weakened: bool) -> list[dict]:
    """Stop the worker's consumer, submit calls, wait until they are in Redis, FLUSHDB, resume the worker."""
    worker = app.workers[0].pid
    assert worker is not None
    os.kill(worker, signal.SIGSTOP)
    try:
        time.sleep(1.5)  # its pending BRPOP times out: nothing the broker gets now reaches the worker
        calls = [submit_call(app, app.tenants[0]) for _ in range(submit)]
        broker = _redis(app)
        wait_for(lambda: broker.llen(QUEUE) >= submit, timeout=20, what="the submissions to reach the broker")
        if not weakened:
            assert all(published for _, _, published, _ in _outbox(app))
        broker.flushdb()  # what a restart of a Redis without persistence does
    finally:
        os.kill(worker, signal.SIGCONT)
    return calls


@pytest.mark.parametrize("weakened", [False, True], ids=["outbox", "outbox-weakened"])
def test_a_broker_restart_loses_no_task(reference_app, weakened) -> None:
    app = reference_app(("outbox",) if weakened else (), task_workers=1, env=ENV, shunya=SHUNYA)
    calls = _lose_the_broker(app, 3, weakened=weakened)
    if weakened:
        time.sleep(6)  # three redeliver bounds: had anything been going to publish them again, it would have
        states = ledger(app)
        print(f"\n[broker restart, outbox weakened] ledger={states}")
        assert states == {"queued": 3}, "the weakened app should lose the submissions with the broker"
        return
    settled = wait_for(lambda: ledger_settled(app), timeout=40, what="every task to end")
    jobs = [shunya_job_id(app, call) for call in calls]
    redelivered = metric(app, "outbox_redelivered_total")
    print(f"\n[broker restart] ledger={settled} redelivered={redelivered}")
    assert all(analyses(app, job) == 1 for job in jobs)
    assert settled == {"succeeded": 6}, settled
    assert redelivered >= 3
    assert not _outbox(app)


@pytest.mark.parametrize("weakened", [False, True], ids=["outbox", "outbox-weakened"])
def test_a_lost_poll_is_not_kept_lost_by_its_deduplication_mark(reference_app, weakened) -> None:
    """The poll's message is lost but its de-duplication mark is not: a refresh must not make that permanent.

    With the outbox the mark is the outbox row itself, which the sweeper publishes
    again; weakened, the Redis mark survives the lost message and every refresh is
    answered "deduplicated" while nothing polls the job.
    """
    env = {**ENV, "STORMPROOF_POLL_INTERVAL_MS": "3000"}
    # Shunya answers slowly, so the worker's consumer can be stopped while the submission runs,
    # before it queues the first poll: that poll then stays in the broker, where it is lost.
    app = reference_app(("outbox",) if weakened else (), task_workers=1, env=env,
                        shunya={**SHUNYA, "latency_ms": 1500})
    tenant = app.tenants[0]
    call = submit_call(app, tenant)
    worker = app.workers[0].pid
    assert worker is not None

    def state(name: str) -> str | None:
        rows = sql_rows(app.database_url, "SELECT state FROM task_records WHERE name = %s", name)
        return rows[0][0] if rows else None

    wait_for(lambda: state(SUBMIT_TASK) == "running", timeout=10, interval=0.02, what="the submission to start")
    os.kill(worker, signal.SIGSTOP)
    broker = _redis(app)
    try:
        wait_for(lambda: state(POLL_TASK) is not None, timeout=10, what="the poll to be queued")
        if not weakened:  # due 3 s later, then published by the relay into the broker
            wait_for(lambda: all(published for _, name, published, _ in _outbox(app) if name == POLL_TASK),
                     timeout=10, what="the poll to be published")
        time.sleep(1.5)
        assert broker.llen(QUEUE) == 1, "the poll should be waiting in the broker"
        for key in broker.keys("*"):  # the broker's messages go; every other key (marks, locks) stays
            if not key.startswith(b"taskdedupe:"):
                broker.delete(key)
    finally:
        os.kill(worker, signal.SIGCONT)
    job_id = shunya_job_id(app, call)
    answer = httpx.post(f"{app.url}/api/v1/calls/{call['id']}/refresh", headers=auth(tenant.manager_token)).json()
    assert answer["deduplicated"], answer
    if weakened:
        time.sleep(6)
        print(f"\n[lost poll, outbox weakened] analyses={analyses(app, job_id)} ledger={ledger(app)}")
        assert analyses(app, job_id) == 0, "the surviving mark should keep the lost poll lost"
        return
    wait_for(lambda: analyses(app, job_id) == 1, timeout=30, what="the re-published poll to apply the result")
    settled = wait_for(lambda: ledger_settled(app), timeout=30, what="the ledger to settle")
    assert settled == {"succeeded": 2}, settled
