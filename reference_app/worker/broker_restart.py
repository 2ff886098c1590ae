"""The worker survives a broker restart: kombu's restore of unacknowledged messages on a dead connection.

When Redis goes away under a consuming worker, Celery closes the broker
connection and reconnects (``Consumer.on_connection_error_after_connected``).
Closing a channel restores the messages the worker had taken but not
acknowledged (``QoS.restore_unacked``). With kombu 5.7 and redis-py 8 that
restore sometimes runs after the channel's connection was already released:
kombu then builds a Redis client from ``connection.client``, which is None,
raises ``AttributeError`` (not a connection error, so Celery does not ignore
it), and the worker stops with "Unrecoverable error" (measured in
``redis-flap``: one run in five; kombu issues #582 and #970 are the same
crash on other paths). A worker that exits after a broker restart loses
every later task until someone restarts it, which the plan's queue design
must not do.

:func:`install` wraps ``restore_unacked``, and the ``ack`` and ``reject`` of a
task that ended while the connection was being replaced (with late
acknowledgement, the pool's result arrives on the old channel: measured in
``redis-flap-tasks``, "Unrecoverable error: AttributeError: 'NoneType' object has no
attribute 'hostname'" from ``QoS.ack``). When, and only when, one fails that way,
it is done again with a Redis client of its own on the broker URL, lent to the
channel for that call: the restored messages go back to their queue (where the
ledger's checks skip the copies of tasks that already ended), and an ack
removes its message from the unacknowledged index as it would have (a message
the restore already put back runs again, harmlessly, for the same reason).
Any other error is raised as before.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["install"]

log = logging.getLogger(__name__)

_installed = False


def _connection_released(qos: Any) -> bool:
    transport = getattr(getattr(qos, "channel", None), "connection", None)
    return transport is None or getattr(transport, "client", None) is None


def _on_fresh_client(qos: Any, broker_url: str, call: Any) -> Any:
    """``call(client)`` with a new client on ``broker_url``, its pool lent to the channel meanwhile.

    kombu looks some keys up through the channel's own pool (``get_table`` for a
    restore, ``conn_or_acquire`` for an ack), which is gone too: without the loan the
    message is dropped ("Could not restore message") or the call fails again.
    """
    import redis

    fresh = redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=5)
    channel = qos.channel
    pool = getattr(channel, "_pool", None)
    channel._pool = fresh.connection_pool
    try:
        return call(fresh)
    finally:
        channel._pool = pool
        fresh.close()


def _surviving_release(original: Any, doing: str, broker_url: str, *, takes_client: bool = False) -> Any:
    """``original`` (a ``QoS`` method), done again on a new connection when it failed on a released one.

    ``takes_client``: the method takes the client to use (``restore_unacked``): the retry passes the
    new one, and a call that brought its own client is not retried (its failure is not this one).
    """

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except AttributeError:
            own_client = takes_client and any(c is not None for c in (*args, kwargs.get("client")))
            if own_client or not _connection_released(self):
                raise
        log.warning("broker connection released while %s; doing it again with a new connection", doing)
        if takes_client:
            return _on_fresh_client(self, broker_url, lambda fresh: original(self, fresh))
        return _on_fresh_client(self, broker_url, lambda fresh: original(self, *args, **kwargs))

    return wrapped


def install(broker_url: str) -> None:
    """Wrap kombu's Redis ``QoS.restore_unacked``, ``ack`` and ``reject`` (once per process)."""
    global _installed
    if _installed:
        return
    from kombu.transport import redis as kombu_redis

    qos = kombu_redis.QoS
    qos.restore_unacked = _surviving_release(qos.restore_unacked, "restoring unacknowledged messages", broker_url,
                                             takes_client=True)
    qos.ack = _surviving_release(qos.ack, "acknowledging a task that ended meanwhile", broker_url)
    qos.reject = _surviving_release(qos.reject, "rejecting a task", broker_url)
    _installed = True
