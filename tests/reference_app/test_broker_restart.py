"""The worker survives kombu's restore of unacknowledged messages on a released broker connection.

Real Redis: a message is taken and not acknowledged, then the channel is put in
the state the crash left it in (its connection released, no client pool yet).
Unwrapped, the restore raises AttributeError and the worker would stop; wrapped,
the message goes back to its queue.
"""

from __future__ import annotations

import pytest
import redis
from kombu import Connection, Exchange, Queue

from stormproof.reference_app.worker import broker_restart

QUEUE = "broker-restart-test"


def _taken(url: str):  # type: ignore[no-untyped-def]
    conn, channel, message = _taken_with_message(url)
    return conn, channel


def _taken_with_message(url: str):  # type: ignore[no-untyped-def]
    conn = Connection(url)
    channel = conn.channel()
    queue = Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE, channel=channel)
    queue.declare()
    conn.Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key=QUEUE, declare=[queue])
    message = queue.get(no_ack=False)
    assert message is not None
    return conn, channel, message


def _release(channel) -> None:  # type: ignore[no-untyped-def]
    """The state of the crash: the pool is gone and the transport has no client any more."""
    channel._pool = None
    channel.connection.client = None


def test_a_restore_on_a_released_connection_puts_the_message_back(stormproof_redis) -> None:
    url = stormproof_redis.url_for(61)
    client = stormproof_redis.client()
    client.execute_command("SELECT", 61)
    client.flushdb()
    broker_restart.install(url)
    conn, channel = _taken(url)
    assert client.llen(QUEUE) == 0 and client.hlen("unacked") == 1
    _release(channel)
    channel.qos.restore_unacked()
    assert client.llen(QUEUE) == 1 and client.hlen("unacked") == 0
    conn.client = None  # already released above; nothing left to close


def _fresh_db(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url)  # on the URL's database (a SELECT would hold for one pooled connection)
    client.flushdb()
    return client


def test_an_ack_on_a_released_connection_is_applied_with_a_new_one(stormproof_redis) -> None:
    """A task that ends while the worker reconnects: its late ack must not stop the worker."""
    url = stormproof_redis.url_for(61)  # install() wraps once per process, on the first URL
    client = _fresh_db(url)
    broker_restart.install(url)
    conn, channel, message = _taken_with_message(url)
    assert client.hlen("unacked") == 1
    _release(channel)
    channel.qos.ack(message.delivery_tag)
    assert client.hlen("unacked") == 0 and client.llen(QUEUE) == 0  # acknowledged: gone, not redelivered
    conn.client = None


def test_a_requeueing_reject_on_a_released_connection_puts_the_message_back(stormproof_redis) -> None:
    url = stormproof_redis.url_for(61)
    client = _fresh_db(url)
    broker_restart.install(url)
    conn, channel, message = _taken_with_message(url)
    _release(channel)
    channel.qos.reject(message.delivery_tag, requeue=True)
    assert client.hlen("unacked") == 0 and client.llen(QUEUE) == 1
    conn.client = None


def _wrapped_failing_restore(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """``QoS.restore_unacked`` made to raise an AttributeError of its own, wrapped; the clients of its calls."""
    from kombu.transport import redis as kombu_redis

    calls: list[object] = []

    def broken(self, client=None):  # type: ignore[no-untyped-def]
        calls.append(client)
        raise AttributeError("a bug of its own")

    monkeypatch.setattr(broker_restart, "_installed", False)
    monkeypatch.setattr(kombu_redis.QoS, "restore_unacked", broken)
    broker_restart.install("redis://127.0.0.1:1/0")
    return calls


def _qos(client: object | None):  # type: ignore[no-untyped-def]
    class Transport:
        pass

    transport = Transport()
    transport.client = client  # type: ignore[attr-defined]
    return type("QoS", (), {"channel": type("Channel", (), {"connection": transport})()})()


def test_the_wrapper_leaves_other_attribute_errors_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the connection alive, an AttributeError is a bug of its own: raised at once, never done again (a
    retry on a new client would run the failed call twice; a mutation sweep's survivor, ``or`` made ``and``)."""
    from kombu.transport import redis as kombu_redis

    calls = _wrapped_failing_restore(monkeypatch)
    with pytest.raises(AttributeError, match="a bug of its own"):
        kombu_redis.QoS.restore_unacked(_qos(client=object()))
    assert calls == [None]


def test_a_restore_that_brought_its_own_client_is_not_done_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore given a client of its own failed on that client, not on the released connection: raised."""
    from kombu.transport import redis as kombu_redis

    calls = _wrapped_failing_restore(monkeypatch)
    own = object()
    with pytest.raises(AttributeError, match="a bug of its own"):
        kombu_redis.QoS.restore_unacked(_qos(client=None), own)
    assert calls == [own]
