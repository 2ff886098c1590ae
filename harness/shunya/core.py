"""The stub's state machine: config, jobs, completion timer, webhooks and counters.

Why: one object owns all mutable state and is touched only from the
server's event loop, so the HTTP layer stays thin and there are no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

from .config import StubConfig
from .delivery import DeliveryRecord, WebhookDispatcher
from .jobs import Job, JobStore
from .results import stuck_draw
from .stats import StubStats

__all__ = ["StubCore", "StubSettings"]

_IDLE_WAKE_S = 0.25


@dataclass(frozen=True)
class StubSettings:
    """Fixed for the life of a stub process (not touched by reset).

    ``webhook_url`` None means the stub never sends webhooks (polling only).
    """

    webhook_url: str | None = None
    webhook_secret: str = "shunya-stub-secret"
    max_jobs: int = 100_000
    max_outbox: int = 10_000
    max_delivery_records: int = 100_000
    max_call_log: int = 500_000


class StubCore:
    """Owns jobs, config and deliveries; drives completion and delivery tasks."""

    def __init__(self, settings: StubSettings, config: StubConfig | None = None) -> None:
        self.settings = settings
        self.config = config or StubConfig()
        self.stats = StubStats()
        self.jobs = JobStore(max_jobs=settings.max_jobs)
        self.dispatcher = WebhookDispatcher(
            settings.webhook_url,
            settings.webhook_secret,
            config=lambda: self.config,
            stats=lambda: self.stats,
            max_outbox=settings.max_outbox,
            max_records=settings.max_delivery_records,
        )
        #: (unix seconds, company id) of each API call the stub served, for the Shunya rate limit's checker
        #: (``GET /admin/calls``); bounded, oldest dropped first.
        self.calls: deque[tuple[float, str]] = deque(maxlen=settings.max_call_log)
        self._fault_rng = random.Random()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reseed(self.config.seed)
        self._errors_left = self.config.error_first

    # -- config ----------------------------------------------------------------

    def _reseed(self, seed: int | None) -> None:
        self._fault_rng = random.Random(None if seed is None else f"shunya-faults:{seed}")
        self.dispatcher.reseed(seed)

    def update_config(self, patch: Mapping[str, Any]) -> StubConfig:
        """Apply a validated partial update; setting ``seed`` (even to the same value) reseeds."""
        self.config = self.config.updated(patch)
        if "seed" in patch:
            self._reseed(self.config.seed)
        if "error_first" in patch:
            self._errors_left = self.config.error_first
        self._wake.set()
        return self.config

    def reset(self) -> None:
        """Forget jobs, deliveries and counters; restore ``StubConfig()`` defaults (settings stay)."""
        self.jobs.clear()
        self.calls.clear()
        self.dispatcher.clear()
        self.stats = StubStats()
        self.config = StubConfig()
        self._errors_left = 0
        self._reseed(None)

    # -- API faults ------------------------------------------------------------

    def api_delay_s(self) -> float:
        """Latency to add to this API call."""
        cfg = self.config
        jitter = self._fault_rng.random() * cfg.latency_jitter_ms if cfg.latency_jitter_ms else 0.0
        return (cfg.latency_ms + jitter) / 1000

    def inject_error(self) -> bool:
        """Whether this API call should be answered with ``error_status``: one of the first ``error_first``
        since it was set, else drawn at ``error_rate``."""
        if self._errors_left > 0:
            self._errors_left -= 1
            return True
        rate = self.config.error_rate
        if rate <= 0.0:
            return False
        return rate >= 1.0 or self._fault_rng.random() < rate

    def inject_odd_answer(self) -> str | None:
        """``"reject"`` (a 422 refusal) at ``reject_rate``, else ``"garbage"`` (200 with a JSON array) at
        ``garbage_rate``, else None: drawn only where a rate is set, so other runs draw as before."""
        cfg = self.config
        if cfg.reject_rate > 0 and (cfg.reject_rate >= 1.0 or self._fault_rng.random() < cfg.reject_rate):
            return "reject"
        if cfg.garbage_rate > 0 and (cfg.garbage_rate >= 1.0 or self._fault_rng.random() < cfg.garbage_rate):
            return "garbage"
        return None

    def log_call(self, company_id: str) -> None:
        """Note an API call of ``company_id`` now: what the app's per-tenant Shunya limit let through."""
        self.calls.append((time.time(), company_id))

    def webhook_on_poll(self, job: Job) -> bool:
        """Whether this poll of ``job`` first delivers its webhook (``webhook_on_poll_rate``): only for a finished
        job, with webhooks on and a receiver to send to."""
        rate = self.config.webhook_on_poll_rate
        if rate <= 0.0 or job.status == "pending" or not self.config.webhook_enabled:
            return False
        if self.settings.webhook_url is None:
            return False
        return rate >= 1.0 or self._fault_rng.random() < rate

    # -- jobs ------------------------------------------------------------------

    def create_job(self, call_id: str, company_id: str, audio_url: str | None) -> Job:
        due = time.monotonic() + self.config.complete_after_ms / 1000
        job = self.jobs.create(call_id, company_id, audio_url, due, self.config.seed)
        self.stats.jobs_created += 1
        self._wake.set()
        return job

    def finish_job(self, job: Job) -> Job:
        """Complete or fail ``job`` now and hand its webhook to the dispatcher."""
        self.jobs.finish(job, self.config.fail_rate)
        if job.status == "completed":
            self.stats.jobs_completed += 1
        else:
            self.stats.jobs_failed += 1
        self.dispatcher.submit(job)
        return job

    async def deliver_now(self, job: Job) -> DeliveryRecord:
        return await self.dispatcher.deliver_now(job)

    async def _completion_loop(self) -> None:
        while True:
            self._wake.clear()
            now = time.monotonic()
            for job in self.jobs.pop_due(now):
                if self.config.stuck_rate > 0 and stuck_draw(job.job_id) < self.config.stuck_rate:
                    job.stuck = True  # pending for good: only POST /admin/jobs/{id}/complete finishes it
                    self.stats.jobs_stuck += 1
                    continue
                self.finish_job(job)
            next_due = self.jobs.next_due()
            timeout = _IDLE_WAKE_S if next_due is None else min(_IDLE_WAKE_S, max(0.0, next_due - now))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start the completion and delivery tasks on the running loop."""
        await self.dispatcher.start()
        self._tasks = [
            asyncio.create_task(self._completion_loop(), name="shunya-completions"),
            asyncio.create_task(self.dispatcher.run(), name="shunya-deliveries"),
        ]

    async def stop(self) -> None:
        """Cancel background tasks and close the HTTP client; pending deliveries are dropped."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.dispatcher.close()
