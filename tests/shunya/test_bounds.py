"""Bounded state: the outbox, the job store, and resets that race in-flight deliveries."""

from __future__ import annotations

import time

import pytest

from stormproof.harness.shunya import ShunyaStubClient, StubConfig
from stormproof.harness.shunya.delivery import WebhookDispatcher
from stormproof.harness.shunya.jobs import JobLimitError, JobStore
from stormproof.harness.shunya.stats import StubStats

from .conftest import WebhookReceiver, wait_until


def test_outbox_is_bounded_and_overflow_is_counted_and_recorded() -> None:
    store = JobStore()
    config = StubConfig(webhook_delay_ms=3_600_000, webhook_duplicates=1)
    stats = StubStats()
    dispatcher = WebhookDispatcher(
        "http://127.0.0.1:9/hook", "secret", config=lambda: config, stats=lambda: stats, max_outbox=3
    )
    for i in range(3):
        job = store.create(f"c{i}", "co", None, due=0.0, seed=None)
        store.finish(job, fail_rate=0.0)
        dispatcher.submit(job)  # one delivery + one duplicate each: 6 wanted, 3 fit
    assert dispatcher.pending == 3
    assert stats.deliveries_dropped == 3
    dropped = dispatcher.records()
    assert len(dropped) == 3 and all(r["error"] == "outbox_full" and not r["ok"] for r in dropped)


def test_job_store_is_bounded() -> None:
    store = JobStore(max_jobs=2)
    store.create("a", "co", None, due=0.0, seed=1)
    store.create("b", "co", None, due=0.0, seed=1)
    with pytest.raises(JobLimitError):
        store.create("c", "co", None, due=0.0, seed=1)
    store.clear()
    assert store.create("d", "co", None, due=0.0, seed=1).created_seq == 1


def test_reset_forgets_an_attempt_in_flight_and_does_not_retry_it(
    client: ShunyaStubClient, receiver: WebhookReceiver
) -> None:
    receiver.default_status = 500
    receiver.delay_s = 1.0
    client.set_config(complete_after_ms=0, webhook_backoff_ms=0, webhook_max_attempts=5)
    client.create_job("c", "co")
    receiver.wait_for(1)  # the first attempt is now being answered, slowly
    client.reset()
    time.sleep(receiver.delay_s + 0.7)  # the attempt ends; a retry would be due at once
    assert len(receiver.snapshot()) == 1
    assert client.deliveries() == []
    assert client.stats()["deliveries_attempted"] == 0


def test_completion_timer_finishes_many_jobs(client: ShunyaStubClient, receiver: WebhookReceiver) -> None:
    client.set_config(complete_after_ms=100, webhook_enabled=False)
    ids = [client.create_job(f"c{i}", "co")["job_id"] for i in range(50)]
    wait_until(lambda: client.stats()["jobs_completed"] == 50)
    assert {client.get_job(i)["status"] for i in ids} == {"completed"}
    seqs = sorted(j["completed_seq"] for j in client.jobs())
    assert seqs == list(range(1, 51))
