"""Gauges sampled while the load runs, each beside what the broker itself held at that moment.

A gauge read only at the end (after quiescence) says nothing about whether it
ever moved: a queue-depth gauge stuck at 0 reads right once the system is idle.
So, every ``interval_s`` during the load, the sampler reads the broker's queue
lists and its ``unacked`` hash (tasks delivered and not yet acknowledged)
directly (no proxy), scrapes ``/metrics``, and reads them again: the gauges,
scraped between the two reads, are judged against both (the queue may move
between them; see ``metrics-agree``). A failed scrape or read skips that
sample; it never fails the run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..invariants.metrics import parse_metrics
from .quiesce import DEFAULT_QUEUES, PRIORITY_SEP

__all__ = ["GaugeSampler", "UNACKED", "queue_length", "unacked_length", "write_samples"]

#: The gauges kept from each scrape (the rest of the exposition is not needed).
_KEPT = ("celery_queue_depth", "celery_active_tasks", "db_pool_")


def queue_length(client: Any, queues: tuple[str, ...] = DEFAULT_QUEUES) -> int:
    """Messages waiting in the queues' lists (every priority step), as the broker holds them now."""
    total = 0
    for queue in queues:
        for key in (queue.encode(), *client.scan_iter(match=f"{queue}{PRIORITY_SEP}*")):
            if client.type(key) == b"list":
                total += int(client.llen(key))
    return total


#: The hash in which Celery's Redis transport keeps the messages delivered to a worker and not yet acknowledged.
UNACKED = "unacked"


def unacked_length(client: Any) -> int:
    """Messages delivered to workers and not yet acknowledged (running, or prefetched), as the broker holds them."""
    return int(client.hlen(UNACKED))


class GaugeSampler:
    """Samples ``{"t", "broker_before", "broker_after", "unacked_before", "unacked_after", <gauge keys>}`` every
    ``interval_s`` until stopped."""

    def __init__(self, redis_url: str, scrape: Callable[[], str], *, interval_s: float = 1.0) -> None:
        self._redis_url = redis_url
        self._scrape = scrape
        self._interval = interval_s
        self._stop = threading.Event()
        self._samples: list[MappingProxyType[str, float]] = []
        self._thread = threading.Thread(target=self._run, name="gauge-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> tuple[MappingProxyType[str, float], ...]:
        """Stop sampling; the samples taken."""
        self._stop.set()
        self._thread.join(timeout=15)
        return tuple(self._samples)

    def _run(self) -> None:
        import redis

        client = redis.Redis.from_url(self._redis_url, socket_timeout=2, socket_connect_timeout=2)
        started = time.monotonic()
        try:
            while not self._stop.wait(self._interval):
                try:
                    before, held_before = queue_length(client), unacked_length(client)
                    text = self._scrape()
                    after, held_after = queue_length(client), unacked_length(client)
                    gauges = {k: v for k, v in parse_metrics(text).items() if k.startswith(_KEPT)}
                except Exception:  # noqa: BLE001 - a fault may cut the scrape or the broker: skip the sample
                    continue
                self._samples.append(MappingProxyType({"t": round(time.monotonic() - started, 3),
                                                       "broker_before": float(before),
                                                       "broker_after": float(after),
                                                       "unacked_before": float(held_before),
                                                       "unacked_after": float(held_after), **gauges}))
        finally:
            client.close()


def write_samples(samples: Iterable[Mapping[str, float]], path: Path) -> None:
    """The samples as JSON lines (``gauges.jsonl`` of a run): what the gauges read while the load ran, for a
    reader of a ``queue-depth-blind``, ``active-tasks-blind`` or ``pool-gauges-blind`` violation."""
    with path.open("w", encoding="utf-8") as out:
        for sample in samples:
            out.write(json.dumps(dict(sample), sort_keys=True) + "\n")
