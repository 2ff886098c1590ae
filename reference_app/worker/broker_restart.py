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

:func:`install` wraps ``restore_unacked``: when, and only when, it fails that
way, the restore is done again with a client of its own on the broker URL,
so the messages go back to their queue (where the ledger's checks skip the
copies of tasks that already ended). Any other error is raised as before.
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


def install(broker_url: str) -> None:
    """Wrap kombu's Redis ``QoS.restore_unacked`` (once per process) to survive a released connection."""
    global _installed
    if _installed:
        return
    import redis
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.QoS.restore_unacked

    def restore_unacked(self: Any, client: Any = None) -> Any:
        try:
            return original(self, client)
        except AttributeError:
            if client is not None or not _connection_released(self):
                raise
        log.warning("broker connection released before its unacknowledged messages were restored; "
                    "restoring them with a new connection")
        fresh = redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=5)
        # The restore also looks up the exchange's bindings through the channel's own pool
        # (``get_table``), which is gone too: lend it the fresh client's pool meanwhile, or the
        # message is dropped ("Could not restore message") instead of put back.
        channel = self.channel
        pool = getattr(channel, "_pool", None)
        channel._pool = fresh.connection_pool
        try:
            return original(self, fresh)
        finally:
            channel._pool = pool
            fresh.close()

    kombu_redis.QoS.restore_unacked = restore_unacked
    _installed = True
