"""The app's Redis client after Redis closed its connections (a restart, a reset link)."""

from __future__ import annotations

import asyncio

from stormproof.harness.pytest_plugin import RedisServer
from stormproof.reference_app.context import make_redis


def test_pooled_connections_redis_closed_are_replaced_not_failed(stormproof_redis: RedisServer) -> None:
    """Every command after the server dropped the pool's connections succeeds.

    Without the checkout check, the first command on each pooled connection went
    out on a socket the server had closed and failed ("Connection closed by
    server"): one error answer per pooled connection after every Redis restart.
    """

    async def scenario() -> list[str]:
        client = make_redis(stormproof_redis.url_for(3))
        try:
            # Several connections in the pool: commands in flight at once.
            await asyncio.gather(*(client.blpop(["nothing-here"], timeout=0.2) for _ in range(4)))
            pooled = len(client.connection_pool._available_connections)
            assert pooled >= 4, pooled
            killed = stormproof_redis.client(3).client_kill_filter(_type="normal", skipme=True)
            assert killed >= pooled, killed
            await asyncio.sleep(0.2)  # the FINs arrive
            answers = []
            for _ in range(pooled):  # one at a time: each takes the next pooled (closed) connection
                try:
                    answers.append("ok" if await client.ping() else "false")
                except Exception as exc:  # noqa: BLE001 - the answer under test
                    answers.append(f"{type(exc).__name__}: {exc}")
            return answers
        finally:
            await client.aclose()

    answers = asyncio.run(scenario())
    assert answers == ["ok"] * len(answers), answers
