"""The worker survives kombu's restore of unacknowledged messages on a released broker connection.

Real Redis: a message is taken and not acknowledged, then the channel is put in
the state the crash left it in (its connection released, no client pool yet).
Unwrapped, the restore raises AttributeError and the worker would stop; wrapped,
the message goes back to its queue.
"""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange, Queue

from stormproof.reference_app.worker import broker_restart

QUEUE = "broker-restart-test"


def _taken_message(url: str):  # type: ignore[no-untyped-def]
    conn = Connection(url)
    channel = conn.channel()
    queue = Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE, channel=channel)
    queue.declare()
    conn.Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key=QUEUE, declare=[queue])
    message = queue.get(no_ack=False)
    assert message is not None
    return conn, channel


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
    conn, channel = _taken_message(url)
    assert client.llen(QUEUE) == 0 and client.hlen("unacked") == 1
    _release(channel)
    channel.qos.restore_unacked()
    assert client.llen(QUEUE) == 1 and client.hlen("unacked") == 0
    conn.client = None  # already released above; nothing left to close


def test_the_wrapper_leaves_other_attribute_errors_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from kombu.transport import redis as kombu_redis

    class Alive:
        client = object()

    class Channel:
        connection = Alive()

    class QoS:
        channel = Channel()

    def broken(self, client=None):  # type: ignore[no-untyped-def]
        raise AttributeError("a bug of its own")

    monkeypatch.setattr(broker_restart, "_installed", False)
    monkeypatch.setattr(kombu_redis.QoS, "restore_unacked", broken)
    broker_restart.install("redis://127.0.0.1:1/0")
    with pytest.raises(AttributeError, match="a bug of its own"):
        kombu_redis.QoS.restore_unacked(QoS())
