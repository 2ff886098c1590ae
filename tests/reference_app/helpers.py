"""Helpers for talking to a running reference app in tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import psycopg


def auth(token: str, key: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", **extra}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def new_key() -> str:
    return uuid.uuid4().hex


async def fire_together(
    base_url: str, requests: Sequence[tuple[str, str, dict[str, str], Any]]
) -> list[httpx.Response]:
    """Send every request at once on separate connections and wait for all answers."""
    limits = httpx.Limits(max_connections=len(requests) + 5, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        start = asyncio.Event()

        async def one(method: str, path: str, headers: dict[str, str], body: Any) -> httpx.Response:
            await start.wait()
            return await client.request(method, path, headers=headers, json=body)

        tasks = [asyncio.create_task(one(*r)) for r in requests]
        await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks)


def sql_rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the app's database directly, as the harness's checkers do."""
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]
