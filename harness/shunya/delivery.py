"""Signed webhook delivery with deliberate duplicates, delays, reordering and retries.

Why: the app's exactly-once logic is only tested if webhooks arrive the way
the real world sends them: twice, late, out of order, or after failures.

Design: one sender task sends attempts one at a time from a bounded outbox
ordered by (not_before, sequence). Sending one at a time keeps the arrival
order equal to the outbox order, so a seeded reorder is reproducible.
Reordering gathers up to ``webhook_reorder`` completion events (or waits at
most ``webhook_reorder_window_ms``), shuffles them with the seeded RNG and
schedules the batch with one common ``not_before``. A batch of two or more
never leaves in completion order (an identity shuffle is rotated by one).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import ipaddress
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Literal, TypedDict
from urllib.parse import urlsplit

import httpx

from .config import StubConfig
from .jobs import Job
from .results import canonical_json
from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from .stats import StubStats

__all__ = ["DeliveryRecord", "WebhookDispatcher", "WebhookEvent", "check_webhook_url"]

_MAX_BACKOFF_S = 30.0
_IDLE_WAKE_S = 0.25


class WebhookEvent(TypedDict):
    """The JSON body of one webhook delivery."""

    event: Literal["job.completed", "job.failed"]
    delivery_id: str
    job_id: str
    company_id: str
    call_id: str
    status: str
    result: dict[str, Any] | None
    output_hash: str | None
    error: dict[str, str] | None


class DeliveryRecord(TypedDict):
    """One delivery attempt as listed by ``GET /admin/deliveries``."""

    seq: int
    delivery_id: str
    job_id: str
    event: str
    attempt: int
    attempted_at: str
    status_code: int | None
    error: str | None
    ok: bool
    duplicate: bool
    manual: bool


def check_webhook_url(url: str, allow_remote: bool = False) -> str:
    """Return ``url`` if it is an http(s) URL to a loopback host, else raise ``ValueError``.

    Chaos traffic must stay on this machine; ``allow_remote`` lifts the host
    check for setups where the app runs elsewhere on a private test network.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL must be an absolute http(s) URL, got {url!r}")
    if allow_remote:
        return url
    host = parts.hostname
    if host == "localhost":
        return url
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"webhook host {host!r} is not a loopback address")
    return url


@dataclass(order=True)
class _Attempt:
    not_before: float
    seq: int
    delivery_id: str = field(compare=False)
    event: WebhookEvent = field(compare=False)
    attempt: int = field(compare=False, default=1)
    duplicate: bool = field(compare=False, default=False)


@dataclass
class _Buffered:
    event: WebhookEvent
    completed: float


class WebhookDispatcher:
    """Turns job completions into signed HTTP deliveries to one webhook URL."""

    def __init__(
        self,
        webhook_url: str | None,
        secret: str,
        config: Callable[[], StubConfig],
        stats: Callable[[], StubStats],
        max_outbox: int = 10_000,
        max_records: int = 100_000,
    ) -> None:
        self.webhook_url = webhook_url
        self._secret = secret
        self._config = config
        self._stats = stats
        self.max_outbox = max_outbox
        self._outbox: list[_Attempt] = []
        self._buffer: list[_Buffered] = []
        self._records: deque[DeliveryRecord] = deque(maxlen=max_records)
        self._seq = 0
        self._record_seq = 0
        self._epoch = 0  # bumped by clear(): attempts in flight across a reset are forgotten
        self._delivery_count = 0
        self._reorder_rng = random.Random()
        self._id_seed: int | None = None
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client; call from the server's event loop."""
        # trust_env=False: never route chaos traffic through an environment proxy.
        self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def reseed(self, seed: int | None) -> None:
        """Restart the reorder RNG and delivery-id stream from ``seed`` (None: OS entropy)."""
        self._reorder_rng = random.Random(None if seed is None else f"shunya-reorder:{seed}")
        self._id_seed = seed

    def clear(self) -> None:
        """Drop queued and buffered deliveries and the attempt log."""
        self._epoch += 1
        self._outbox.clear()
        self._buffer.clear()
        self._records.clear()
        self._record_seq = 0

    # -- inspection ----------------------------------------------------------

    def records(self, job_id: str | None = None) -> list[DeliveryRecord]:
        """Attempts in the order they were made, optionally for one job."""
        return [dict(r) for r in self._records if job_id is None or r["job_id"] == job_id]  # type: ignore[misc]

    @property
    def pending(self) -> int:
        """Deliveries queued or buffered but not attempted yet."""
        return len(self._outbox) + len(self._buffer)

    # -- scheduling ----------------------------------------------------------

    def _new_delivery_id(self) -> str:
        self._delivery_count += 1
        if self._id_seed is None:
            return "dlv_" + secrets.token_hex(16)
        digest = hashlib.sha256(f"shunya-dlv:{self._id_seed}:{self._delivery_count}".encode()).hexdigest()
        return "dlv_" + digest[:32]

    def event_for(self, job: Job, delivery_id: str) -> WebhookEvent:
        """Build the webhook body for a finished job."""
        return {
            "event": "job.completed" if job.status == "completed" else "job.failed",
            "delivery_id": delivery_id,
            "job_id": job.job_id,
            "company_id": job.company_id,
            "call_id": job.call_id,
            "status": job.status,
            "result": dict(job.result) if job.result is not None else None,
            "output_hash": job.output_hash,
            "error": job.error,
        }

    def submit(self, job: Job) -> None:
        """Queue the webhook for a job that just finished (no-op if webhooks are off)."""
        cfg = self._config()
        if not cfg.webhook_enabled or self.webhook_url is None:
            return
        delivery_id = self._new_delivery_id()
        job.first_delivery_id = delivery_id
        event = self.event_for(job, delivery_id)
        now = time.monotonic()
        if cfg.webhook_reorder > 1:
            self._buffer.append(_Buffered(event, now))
            if len(self._buffer) >= cfg.webhook_reorder:
                self._flush_buffer(now)
        else:
            self._schedule_batch([event], now + cfg.webhook_delay_ms / 1000)
        self._wake.set()

    def _flush_buffer(self, now: float) -> None:
        batch = self._buffer
        self._buffer = []
        if not batch:
            return
        delay = self._config().webhook_delay_ms / 1000
        order = list(range(len(batch)))
        self._reorder_rng.shuffle(order)
        if len(order) > 1 and order == sorted(order):
            order = order[1:] + order[:1]
        not_before = max(now, max(b.completed for b in batch) + delay)
        self._schedule_batch([batch[i].event for i in order], not_before)

    def _schedule_batch(self, events: list[WebhookEvent], not_before: float) -> None:
        cfg = self._config()
        for event in events:
            self._push(_Attempt(not_before, 0, event["delivery_id"], event))
            for _ in range(cfg.webhook_duplicates):
                dup_id = event["delivery_id"] if cfg.duplicate_same_delivery_id else self._new_delivery_id()
                dup_event: WebhookEvent = {**event, "delivery_id": dup_id}
                self._push(_Attempt(not_before, 0, dup_id, dup_event, duplicate=True))

    def _push(self, attempt: _Attempt) -> None:
        if len(self._outbox) >= self.max_outbox:
            self._stats().deliveries_dropped += 1
            self._record(attempt, None, "outbox_full", manual=False)
            return
        self._seq += 1
        attempt.seq = self._seq
        heapq.heappush(self._outbox, attempt)

    # -- sending -------------------------------------------------------------

    def _record(self, attempt: _Attempt, status: int | None, error: str | None, manual: bool) -> DeliveryRecord:
        self._record_seq += 1
        rec = self._unrecorded(attempt, status, error, manual)
        rec["seq"] = self._record_seq
        self._records.append(rec)
        return rec

    def _unrecorded(self, attempt: _Attempt, status: int | None, error: str | None, manual: bool) -> DeliveryRecord:
        return {
            "seq": 0,
            "delivery_id": attempt.delivery_id,
            "job_id": attempt.event["job_id"],
            "event": attempt.event["event"],
            "attempt": attempt.attempt,
            "attempted_at": datetime.now(timezone.utc).isoformat(),
            "status_code": status,
            "error": error,
            "ok": status is not None and 200 <= status < 300,
            "duplicate": attempt.duplicate,
            "manual": manual,
        }

    async def _send(self, attempt: _Attempt, manual: bool) -> tuple[DeliveryRecord, bool]:
        """Make one HTTP attempt; return its record and whether it still counts.

        An attempt that straddled a reset does not count: it is neither
        recorded nor retried, so a reset really starts from nothing.
        """
        assert self._client is not None and self.webhook_url is not None
        epoch = self._epoch
        cfg = self._config()
        body = canonical_json(attempt.event)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            "User-Agent": "shunya-stub/1",
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(
                self.webhook_url, content=body, headers=headers, timeout=cfg.webhook_timeout_ms / 1000
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        if epoch != self._epoch:
            return self._unrecorded(attempt, status, error, manual), False
        rec = self._record(attempt, status, error, manual)
        stats = self._stats()
        stats.deliveries_attempted += 1
        if rec["ok"]:
            stats.deliveries_succeeded += 1
        else:
            stats.deliveries_failed += 1
            if status is not None and 400 <= status < 500 and status != 409:
                stats.deliveries_refused += 1
        if attempt.duplicate and attempt.attempt == 1:
            stats.duplicates_sent += 1
        if attempt.attempt > 1:
            stats.deliveries_retried += 1
        return rec, True

    async def deliver_now(self, job: Job) -> DeliveryRecord:
        """Send a finished job's webhook once, immediately, bypassing delay/reorder/retry.

        A job that was delivered before gets a duplicate: a new delivery_id,
        or the first one again when ``duplicate_same_delivery_id`` is set.
        Works even with ``webhook_enabled`` off: it is an explicit operator act.
        """
        if self.webhook_url is None:
            raise RuntimeError("the stub has no webhook URL")
        first = job.first_delivery_id
        if first is not None and self._config().duplicate_same_delivery_id:
            delivery_id = first
        else:
            delivery_id = self._new_delivery_id()
        if first is None:
            job.first_delivery_id = delivery_id
        attempt = _Attempt(time.monotonic(), 0, delivery_id, self.event_for(job, delivery_id), duplicate=first is not None)
        rec, _ = await self._send(attempt, manual=True)
        return rec

    def _next_deadline(self, now: float) -> float:
        deadline = now + _IDLE_WAKE_S
        if self._outbox:
            deadline = min(deadline, self._outbox[0].not_before)
        if self._buffer:
            deadline = min(deadline, self._buffer[0].completed + self._config().webhook_reorder_window_ms / 1000)
        return deadline

    async def run(self) -> None:
        """Send due attempts until cancelled (the server cancels it on shutdown)."""
        while True:
            self._wake.clear()
            now = time.monotonic()
            cfg = self._config()
            if self._buffer and (
                cfg.webhook_reorder <= 1
                or now - self._buffer[0].completed >= cfg.webhook_reorder_window_ms / 1000
            ):
                self._flush_buffer(now)
            if self._outbox and self._outbox[0].not_before <= now:
                attempt = heapq.heappop(self._outbox)
                rec, counts = await self._send(attempt, manual=False)
                if counts and not rec["ok"] and cfg.webhook_retry and attempt.attempt < cfg.webhook_max_attempts:
                    backoff = min(cfg.webhook_backoff_ms / 1000 * 2 ** (attempt.attempt - 1), _MAX_BACKOFF_S)
                    self._push(
                        _Attempt(
                            time.monotonic() + backoff,
                            0,
                            attempt.delivery_id,
                            attempt.event,
                            attempt=attempt.attempt + 1,
                            duplicate=attempt.duplicate,
                        )
                    )
                continue
            timeout = max(0.0, self._next_deadline(now) - now)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
