"""Prometheus metrics of the app, in one place.

With several uvicorn worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty directory: counters are then written per process and ``/metrics``
aggregates them, so the harness's metrics-agree check sees every worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess

__all__ = ["Metrics", "METRICS", "render_metrics", "CONTENT_TYPE_LATEST"]


@dataclass(frozen=True)
class Metrics:
    http_requests: Counter
    http_duration: Histogram
    idempotency: Counter
    locks: Counter
    locks_lost: Counter
    guard_rejections: Counter
    sessions_started: Counter
    sessions_stopped: Counter
    assignments: Counter


def _build() -> Metrics:
    return Metrics(
        http_requests=Counter(
            "http_requests_total", "HTTP requests answered", ["method", "route", "status"]
        ),
        http_duration=Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0),
        ),
        idempotency=Counter(
            "idempotency_keys_total",
            "Idempotency-Key outcomes: new (dedupe miss), replay (dedupe hit), mismatch, "
            "in_flight, missing, expired",
            ["outcome"],
        ),
        locks=Counter(
            "redis_lock_acquire_total",
            "Redis lock acquisitions by outcome (acquired, busy, error)",
            ["lock", "outcome"],
        ),
        locks_lost=Counter(
            "redis_lock_lost_total",
            "Locks found expired or taken over at release: the holder ran past its TTL",
            ["lock"],
        ),
        guard_rejections=Counter(
            "db_guard_rejections_total",
            "Writes refused by a database guard after passing the application check",
            ["guard"],
        ),
        sessions_started=Counter(
            "recording_sessions_started_total", "Recording sessions created", ["source"]
        ),
        sessions_stopped=Counter(
            "recording_sessions_stopped_total", "Recording sessions stopped", ["source"]
        ),
        assignments=Counter("appointment_assignments_total", "Appointments assigned to a rep"),
    )


METRICS = _build()


def render_metrics() -> tuple[bytes, str]:
    """The exposition text, aggregated across worker processes when multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
