"""Webhook delivery over real HTTP: signing, duplicates, delay, reorder, retries, manual re-delivery."""

from __future__ import annotations

import socket
import time

import pytest

from stormproof.harness.shunya import (
    ShunyaStubClient,
    ShunyaStubError,
    canonical_json,
    expected_result,
    output_hash,
    start_stub,
    verify,
)

from .conftest import SECRET, Received, WebhookReceiver, wait_until

GRACE_S = 0.5  # time allowed for unexpected extra deliveries to show up


def assert_signed(delivery: Received) -> None:
    headers = delivery.headers
    assert headers["content-type"] == "application/json"
    timestamp = int(headers["x-shunya-timestamp"])
    assert abs(time.time() - timestamp) < 60
    assert verify(SECRET, headers["x-shunya-timestamp"], delivery.body, headers["x-shunya-signature"], tolerance_s=60)
    assert not verify("wrong-secret", timestamp, delivery.body, headers["x-shunya-signature"], tolerance_s=60)


def without_delivery_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "delivery_id"}


def settle(client: ShunyaStubClient, attempts: int) -> None:
    """Wait until the stub made ``attempts`` attempts and has nothing queued, then a grace period."""
    wait_until(lambda: client.stats()["deliveries_attempted"] >= attempts and client.stats()["deliveries_pending"] == 0)
    time.sleep(GRACE_S)


def test_completed_job_is_delivered_once_signed_with_the_documented_body(
    client: ShunyaStubClient, receiver: WebhookReceiver
) -> None:
    client.set_config(complete_after_ms=0)
    job_id = client.create_job("call-7", "company-b")["job_id"]
    (delivery,) = receiver.wait_for(1)
    assert_signed(delivery)
    body = delivery.json
    assert delivery.body == canonical_json(body)
    assert body["delivery_id"].startswith("dlv_") and len(body["delivery_id"]) == 4 + 32
    assert without_delivery_id(body) == {
        "event": "job.completed",
        "job_id": job_id,
        "company_id": "company-b",
        "call_id": "call-7",
        "status": "completed",
        "result": expected_result(job_id),
        "output_hash": output_hash(expected_result(job_id)),
        "error": None,
    }
    settle(client, 1)
    assert len(receiver.snapshot()) == 1
    (record,) = client.deliveries(job_id)
    assert record["delivery_id"] == body["delivery_id"]
    assert record["ok"] and record["status_code"] == 200 and record["attempt"] == 1
    assert not record["duplicate"] and not record["manual"] and record["error"] is None
    stats = client.stats()
    assert stats["deliveries_attempted"] == stats["deliveries_succeeded"] == 1
    assert client.jobs()[0]["first_delivery_id"] == body["delivery_id"]


def test_failed_job_sends_job_failed_event(client: ShunyaStubClient, receiver: WebhookReceiver) -> None:
    client.set_config(complete_after_ms=0, fail_rate=1.0)
    job_id = client.create_job("c", "co")["job_id"]
    (delivery,) = receiver.wait_for(1)
    assert_signed(delivery)
    body = delivery.json
    assert body["event"] == "job.failed" and body["status"] == "failed" and body["job_id"] == job_id
    assert body["result"] is None and body["output_hash"] is None and body["error"]["code"] == "analysis_failed"


def test_duplicates_get_new_delivery_ids_and_identical_payloads(
    client: ShunyaStubClient, receiver: WebhookReceiver
) -> None:
    client.set_config(complete_after_ms=0, webhook_duplicates=3)
    job_id = client.create_job("c", "co")["job_id"]
    got = receiver.wait_for(4)
    settle(client, 4)
    got = receiver.snapshot()
    assert len(got) == 4
    for delivery in got:
        assert_signed(delivery)
    bodies = [d.json for d in got]
    assert len({b["delivery_id"] for b in bodies}) == 4
    assert all(without_delivery_id(b) == without_delivery_id(bodies[0]) for b in bodies)
    assert bodies[0]["job_id"] == job_id
    records = client.deliveries(job_id)
    assert [r["duplicate"] for r in records] == [False, True, True, True]
    assert client.stats()["duplicates_sent"] == 3


def test_duplicates_can_reuse_the_same_delivery_id(client: ShunyaStubClient, receiver: WebhookReceiver) -> None:
    client.set_config(complete_after_ms=0, webhook_duplicates=2, duplicate_same_delivery_id=True)
    client.create_job("c", "co")
    receiver.wait_for(3)
    settle(client, 3)
    got = receiver.snapshot()
    assert len(got) == 3
    assert got[0].body == got[1].body == got[2].body


def test_late_delivery_arrives_after_the_job_is_visible_as_completed(
    client: ShunyaStubClient, receiver: WebhookReceiver
) -> None:
    """The delay is measured from before the job was created, not from the poll that saw it completed.

    On a busy machine the poll itself can take most of a second (CI once saw 0.79 s), so a bound taken
    from the poll's return fails a stub that kept its delay; the bound from creation cannot.
    """
    client.set_config(complete_after_ms=0, webhook_delay_ms=1500)
    before_create = time.monotonic()
    job_id = client.create_job("c", "co")["job_id"]
    client.wait_for_job(job_id)
    seen_completed = time.monotonic()
    if seen_completed - before_create < 1.2:
        assert receiver.snapshot() == [], "the webhook must not beat the configured delay"
    (delivery,) = receiver.wait_for(1)
    assert delivery.arrived - before_create >= 1.5
    assert delivery.json["job_id"] == job_id


def _arrival_ranks(client: ShunyaStubClient, receiver: WebhookReceiver, jobs: int, config: dict) -> list[int]:
    """Create ``jobs`` jobs, wait for their webhooks, return completion ranks in arrival order."""
    client.reset()
    receiver.clear()
    client.set_config(config)
    ids = [client.create_job(f"call-{i}", "co")["job_id"] for i in range(jobs)]
    got = receiver.wait_for(jobs)
    completed_seq = {j["job_id"]: j["completed_seq"] for j in client.jobs()}
    assert set(completed_seq) == set(ids)
    arrival = [d.json["job_id"] for d in got]
    assert sorted(arrival) == sorted(ids)
    return [completed_seq[job_id] for job_id in arrival]


def test_without_reorder_webhooks_arrive_in_completion_order(
    client: ShunyaStubClient, receiver: WebhookReceiver
) -> None:
    ranks = _arrival_ranks(client, receiver, 5, {"complete_after_ms": 200})
    assert ranks == sorted(ranks)


def test_seeded_reorder_shuffles_reproducibly(client: ShunyaStubClient, receiver: WebhookReceiver) -> None:
    config = {"complete_after_ms": 300, "webhook_reorder": 5, "webhook_reorder_window_ms": 5000, "seed": 7}
    first = _arrival_ranks(client, receiver, 5, config)
    assert first != sorted(first), "arrival order must differ from completion order"
    assert _arrival_ranks(client, receiver, 5, config) == first


def test_partial_reorder_batch_is_flushed_after_the_window(
    client: ShunyaStubClient, receiver: WebhookReceiver
) -> None:
    client.set_config(complete_after_ms=0, webhook_reorder=10, webhook_reorder_window_ms=300)
    ids = {client.create_job(f"c{i}", "co")["job_id"] for i in range(2)}
    got = receiver.wait_for(2)
    assert {d.json["job_id"] for d in got} == ids


def test_non_2xx_is_retried_with_the_same_delivery_id(client: ShunyaStubClient, receiver: WebhookReceiver) -> None:
    receiver.script.extend([500, 503])
    client.set_config(complete_after_ms=0, webhook_backoff_ms=20, webhook_max_attempts=5)
    job_id = client.create_job("c", "co")["job_id"]
    receiver.wait_for(3)
    settle(client, 3)
    got = receiver.snapshot()
    assert len(got) == 3
    assert len({d.json["delivery_id"] for d in got}) == 1
    records = client.deliveries(job_id)
    assert [(r["attempt"], r["status_code"], r["ok"]) for r in records] == [(1, 500, False), (2, 503, False), (3, 200, True)]
    stats = client.stats()
    assert (stats["deliveries_failed"], stats["deliveries_succeeded"], stats["deliveries_retried"]) == (2, 1, 2)


@pytest.mark.parametrize(("retry", "max_attempts", "expected"), [(True, 3, 3), (False, 3, 1)])
def test_retries_are_bounded(
    client: ShunyaStubClient, receiver: WebhookReceiver, retry: bool, max_attempts: int, expected: int
) -> None:
    receiver.default_status = 500
    client.set_config(complete_after_ms=0, webhook_retry=retry, webhook_max_attempts=max_attempts, webhook_backoff_ms=10)
    client.create_job("c", "co")
    receiver.wait_for(expected)
    settle(client, expected)
    assert len(receiver.snapshot()) == expected
    assert client.stats()["deliveries_failed"] == expected


def test_disabled_webhooks_and_manual_redelivery(client: ShunyaStubClient, receiver: WebhookReceiver) -> None:
    client.set_config(complete_after_ms=0, webhook_enabled=False)
    job_id = client.create_job("c", "co")["job_id"]
    client.wait_for_job(job_id)
    time.sleep(GRACE_S)
    assert receiver.snapshot() == [] and client.deliveries() == []

    first = client.deliver(job_id)
    assert first["ok"] and first["manual"] and not first["duplicate"]
    second = client.deliver(job_id)
    assert second["duplicate"] and second["delivery_id"] != first["delivery_id"]
    client.set_config(duplicate_same_delivery_id=True)
    third = client.deliver(job_id)
    assert third["duplicate"] and third["delivery_id"] == first["delivery_id"]

    got = receiver.wait_for(3)
    assert [d.json["delivery_id"] for d in got] == [first["delivery_id"], second["delivery_id"], third["delivery_id"]]
    for delivery in got:
        assert_signed(delivery)
        assert without_delivery_id(delivery.json) == without_delivery_id(got[0].json)
    assert client.stats()["duplicates_sent"] == 2
    with pytest.raises(ShunyaStubError) as info:
        client.deliver("shj_" + "0" * 32)
    assert info.value.status_code == 404


def test_unreachable_webhook_is_recorded_as_an_error() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()  # nothing listens on this port now
    with start_stub(webhook_url=f"http://127.0.0.1:{dead_port}/hook", webhook_secret=SECRET) as stub:
        with ShunyaStubClient(stub.url) as client:
            client.set_config(complete_after_ms=0, webhook_retry=False)
            job_id = client.create_job("c", "co")["job_id"]
            wait_until(lambda: len(client.deliveries(job_id)) == 1)
            (record,) = client.deliveries(job_id)
    assert record["status_code"] is None and not record["ok"]
    assert record["error"] and "Connect" in record["error"]


def test_non_loopback_webhook_url_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        start_stub(webhook_url="http://192.0.2.10/hook", webhook_secret=SECRET)
    with pytest.raises(ValueError):
        start_stub(webhook_url="ftp://127.0.0.1/hook", webhook_secret=SECRET)


def test_a_poll_can_deliver_the_webhook_before_it_answers(client: ShunyaStubClient, receiver: WebhookReceiver) -> None:
    """``webhook_on_poll_rate`` 1: a poll of a finished job sets off its webhook and answers after the receiver
    did (the race a poll loses to the webhook, made common); a pending job's poll, or rate 0, sends nothing."""
    client.set_config(complete_after_ms=0, webhook_delay_ms=600_000)
    job_id = client.create_job("c", "co")["job_id"]
    client.wait_for_job(job_id)
    assert receiver.snapshot() == []  # the scheduled delivery is ten minutes away
    client.set_config(webhook_on_poll_rate=1.0)
    client.get_job(job_id)
    (delivery,) = receiver.snapshot()  # already received when the poll's answer came
    assert delivery.json["job_id"] == job_id
    client.get_job(job_id)
    assert len(receiver.snapshot()) == 2  # every poll: the second one a duplicate
    client.set_config(webhook_on_poll_rate=0.0)
    client.get_job(job_id)
    client.set_config(webhook_on_poll_rate=1.0, complete_after_ms=600_000)
    pending = client.create_job("c2", "co")["job_id"]
    client.get_job(pending)
    time.sleep(GRACE_S)
    assert len(receiver.snapshot()) == 2
    assert client.stats()["deliveries_attempted"] == 2


def test_refused_deliveries_are_counted_apart(client: ShunyaStubClient, receiver: WebhookReceiver) -> None:
    """``deliveries_refused``: attempts answered a 4xx other than 409 (unauthenticated, unknown job, malformed),
    which the receiver turned away before it could apply or deduplicate them; a 409 or a 5xx is not one."""
    receiver.script.extend([404, 401, 409, 503])
    client.set_config(complete_after_ms=0, webhook_retry=False)
    for n in range(4):
        client.create_job(f"c{n}", "co")
    receiver.wait_for(4)
    settle(client, 4)
    stats = client.stats()
    assert (stats["deliveries_attempted"], stats["deliveries_failed"], stats["deliveries_refused"]) == (4, 4, 2)
