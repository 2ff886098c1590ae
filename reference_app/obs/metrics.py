"""Prometheus metrics of the app, in one place.

With several uvicorn worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty directory: counters are then written per process and ``/metrics``
aggregates them, so the harness's metrics-agree check sees every worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import REGISTRY, multiprocess
from prometheus_client.core import GaugeMetricFamily

__all__ = ["Metrics", "METRICS", "LiveGauges", "render_metrics", "CONTENT_TYPE_LATEST", "initialise_routes"]

#: Label values exported at 0 from start-up, so that the first burst after a start is an increase an alert
#: rule (deploy/prometheus/alerts.yml) can see: ``rate``/``increase`` of a series born at 7 reads 0.
SHUNYA_ENDPOINTS = ("create_job", "get_job")
SHUNYA_ERROR_KINDS = ("timeout", "connection", "5xx", "4xx", "malformed")
TASK_OUTCOMES = ("succeeded", "dead_lettered", "dropped")
#: The server errors the app answers (problems ``internal-error`` and ``unavailable``).
SERVER_ERROR_STATUSES = ("500", "503")


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
    shunya_job_failures: Counter
    shunya_api_errors: Counter
    webhook_dedupe_hits: Counter
    webhook_dedupe_misses: Counter
    webhook_rejected: Counter
    tasks_enqueued: Counter
    task_dedupe_hits: Counter
    tasks_finished: Counter
    task_retries: Counter
    rate_limited: Counter
    outbox_published: Counter
    outbox_publish_failures: Counter
    outbox_redelivered: Counter
    transactions_rerun: Counter


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
        shunya_job_failures=Counter(
            "shunya_job_failures_total", "Shunya jobs that ended in failure, by type", ["type"]
        ),
        shunya_api_errors=Counter(
            "shunya_api_errors_total", "Errors calling the Shunya API, by endpoint and kind", ["endpoint", "kind"]
        ),
        webhook_dedupe_hits=Counter(
            "webhook_dedupe_hits_total",
            "Shunya results that arrived again after being applied (by webhook or poll): not re-applied",
            ["source"],
        ),
        webhook_dedupe_misses=Counter(
            "webhook_dedupe_misses_total", "Shunya results applied for the first time", ["source"]
        ),
        webhook_rejected=Counter(
            "webhook_rejected_total", "Webhook deliveries refused (bad signature, stale, malformed)", ["reason"]
        ),
        tasks_enqueued=Counter("tasks_enqueued_total", "Tasks published to the broker", ["task"]),
        task_dedupe_hits=Counter(
            "task_dedupe_hits_total", "Enqueues skipped because the same work item was already queued", ["task"]
        ),
        tasks_finished=Counter(
            "tasks_finished_total", "Tasks finished, by outcome (succeeded, dead_lettered, dropped)", ["task", "outcome"]
        ),
        task_retries=Counter("task_retries_total", "Task retries scheduled, by reason", ["task", "reason"]),
        rate_limited=Counter("rate_limited_total", "Requests refused by a per-tenant rate limit", ["scope"]),
        outbox_published=Counter("outbox_published_total", "Outbox rows handed to the broker by the relay"),
        outbox_publish_failures=Counter(
            "outbox_publish_failures_total", "Relay rounds cut short because the broker refused a message"
        ),
        outbox_redelivered=Counter(
            "outbox_redelivered_total", "Outbox rows published again by the sweeper: the broker lost the message"
        ),
        transactions_rerun=Counter(
            "db_transactions_rerun_total",
            "Transactions run again after PostgreSQL rolled them back as a deadlock's or serialization's victim",
            ["sqlstate"],
        ),
    )


def _initialise(metrics: Metrics) -> Metrics:
    """Export every known label set from the start, at 0: an absent series reads as "unknown", not 0."""
    for outcome in ("new", "replay", "mismatch", "in_flight", "missing", "expired"):
        metrics.idempotency.labels(outcome)
    for source in ("webhook", "poll"):
        metrics.webhook_dedupe_hits.labels(source)
        metrics.webhook_dedupe_misses.labels(source)
    for source in ("sessions", "legacy"):
        metrics.sessions_started.labels(source)
        metrics.sessions_stopped.labels(source)
    metrics.shunya_job_failures.labels("job_failed")
    for sqlstate in ("40P01", "40001"):
        metrics.transactions_rerun.labels(sqlstate)
    for endpoint in SHUNYA_ENDPOINTS:
        for kind in SHUNYA_ERROR_KINDS:
            metrics.shunya_api_errors.labels(endpoint, kind)
    from ..worker.celery_app import POLL_TASK, RETENTION_TASK, SUBMIT_TASK  # celery and settings only

    for task in (SUBMIT_TASK, POLL_TASK, RETENTION_TASK):
        for outcome in TASK_OUTCOMES:
            metrics.tasks_finished.labels(task, outcome)
    return metrics


def initialise_routes(routes: Iterable[tuple[str, str]], metrics: Metrics | None = None) -> None:
    """Export, per (method, route template), the server-error counters and the latency histogram at 0.

    The error-rate alert divides the rate of 5xx answers by the rate of all answers: without a 5xx
    series from the start, the first burst of errors after a start creates it already counted and
    ``rate`` sees nothing.
    """
    metrics = metrics or METRICS
    if _lazy_series():
        return
    for method, template in routes:
        for status in SERVER_ERROR_STATUSES:
            metrics.http_requests.labels(method, template, status)
        metrics.http_duration.labels(method, template)


def _lazy_series() -> bool:
    """The weakening ``metrics-from-start-up``, read at import (the counters are built before any settings)."""
    from ..weaken import parse_weakenings

    return "metrics-from-start-up" in parse_weakenings(os.environ.get("STORMPROOF_WEAKEN"))


METRICS = _build() if _lazy_series() else _initialise(_build())


class LiveGauges:
    """Gauges read at scrape time (pool and queue state), rather than kept up to date."""

    def __init__(self, samples: "Callable[[], Iterable[tuple[str, str, dict[str, str], float]]]") -> None:
        self._samples = samples

    def collect(self) -> "Iterator[GaugeMetricFamily]":
        families: dict[str, GaugeMetricFamily] = {}
        for name, doc, labels, value in self._samples():
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(name, doc, labels=sorted(labels))
            family.add_metric([labels[k] for k in sorted(labels)], value)
        yield from families.values()


def render_metrics(live: LiveGauges | None = None) -> tuple[bytes, str]:
    """The exposition text: counters (added up across processes in multiprocess mode) and live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_DefaultCollector())
    if live is not None:
        registry.register(live)  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _DefaultCollector:
    """The process-wide default registry, wrapped so it can sit beside live gauges."""

    def collect(self) -> "Iterator[Any]":
        yield from REGISTRY.collect()
