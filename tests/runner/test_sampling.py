"""The gauge sampler: each scrape framed by two reads of the broker's own queue lists."""

from __future__ import annotations

import threading

import redis

from stormproof.harness.runner.sampling import GaugeSampler, queue_length


def test_each_sample_frames_the_scrape_with_the_broker_length(stormproof_redis) -> None:
    url = stormproof_redis.url_for(7)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        client.rpush("shunya", *[b"m"] * 4)
        client.rpush("shunya\x06\x163", b"m")  # a priority step's list counts too
        client.set("shunya-not-a-list", b"x")
        assert queue_length(client) == 5
        scraped = threading.Event()

        def scrape() -> str:
            client.lpop("shunya")  # the queue moves during the scrape: the two reads differ
            scraped.set()
            return 'celery_queue_depth{queue="shunya"} 4\nhttp_requests_total 9\n'

        sampler = GaugeSampler(url, scrape, interval_s=0.05)
        sampler.start()
        assert scraped.wait(10)
        samples = sampler.stop()
    finally:
        client.flushdb()
        client.close()
    first = samples[0]
    assert first["broker_before"] == first["broker_after"] + 1
    assert first['celery_queue_depth{queue="shunya"}'] == 4.0 and "http_requests_total" not in first
