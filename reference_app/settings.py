"""Settings, read from the environment once at start-up and validated there.

The app refuses to start with the development JWT secret outside development,
so that a forgotten default cannot reach a shared environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .weaken import parse_weakenings

__all__ = ["Settings", "SettingsError", "DEV_JWT_SECRET", "default_app_workers"]

DEV_JWT_SECRET = "stormproof-development-secret-change-me"
_DEV_ENVIRONMENTS = {"development", "test"}


class SettingsError(ValueError):
    """A setting is missing or unsafe; the message names the variable and the fix."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be >= {minimum}")
    return value


def default_app_workers(env: Mapping[str, str] | None = None) -> int:
    """uvicorn worker processes: ``STORMPROOF_APP_WORKERS``, else one per core this process may use.

    One process runs Python on one core at a time, so a single worker leaves
    every other core idle however many requests wait; the CPU affinity mask
    (what a container or ``taskset`` grants) counts, not the machine's cores.
    """
    env = os.environ if env is None else env
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return _int(env, "STORMPROOF_APP_WORKERS", max(1, cores), 1)


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    environment: str = "development"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    weakenings: frozenset[str] = field(default_factory=frozenset)
    #: Seconds a stored idempotency key replays its response; after that the key is new again.
    idempotency_ttl_seconds: int = 24 * 3600
    #: Seconds an ``in_flight`` row of the former claim-row protocol blocks retries (409) before it is taken
    #: over; requests in flight now hold an advisory lock instead (services/idempotency.py).
    idempotency_lease_seconds: int = 30
    lock_ttl_ms: int = 10_000
    lock_wait_ms: int = 5_000
    #: Sleep between a check and its write, to make races reproducible in tests (0: off).
    race_delay_ms: int = 0
    #: With ``race_delay_ms``: the window closes as soon as this many callers of one race are in it (0: off).
    #: A test that proves a race sets it to 2 with a long delay, so the race happens every time (tests only).
    race_barrier: int = 0
    #: Under the weakening stop-write-behind only: how long an acknowledged stop waits before it is written.
    write_behind_ms: int = 1_000
    max_body_bytes: int = 64 * 1024
    db_pool_size: int = 20
    db_max_overflow: int = 40
    #: Connections to Redis per process; a command waits for a free one (up to ``redis_socket_timeout``).
    redis_pool_size: int = 64
    # -- background work (plan A1, A4, C1 to C3) --
    shunya_url: str = "http://127.0.0.1:8090"
    shunya_webhook_secret: str = "stormproof-development-webhook-secret"
    #: Seconds a webhook's timestamp may differ from now before it is refused as stale.
    webhook_tolerance_seconds: int = 300
    shunya_timeout_ms: int = 5_000
    #: Retries after the first attempt, before a task is dead-lettered (the retry budget).
    task_max_retries: int = 5
    #: Exponential backoff with full jitter: a retry waits uniform(0, min(cap, base * 2**n)).
    task_backoff_base_ms: int = 1_000
    task_backoff_cap_ms: int = 60_000
    #: Polls of a pending Shunya job: first after this delay, then every interval, at most ``poll_budget``.
    poll_interval_ms: int = 2_000
    poll_budget: int = 60
    #: Seconds a de-duplication mark keeps the same work item from being enqueued again.
    task_dedupe_ttl_seconds: int = 3_600
    #: Seconds before Redis hands an unacknowledged task (its worker died) to another worker.
    broker_visibility_timeout_seconds: int = 300
    #: Per-tenant limits (GCRA: a steady rate with a burst), 0 = unlimited.
    rate_api_per_second: int = 200
    rate_api_burst: int = 400
    rate_shunya_per_second: int = 50
    rate_tasks_per_second: int = 100
    #: Per-tenant retry budget (plan C1 item 3): a tenant's failing tasks may retry this many times a second
    #: (GCRA, with this burst); a retry over it is refused and its task dead-lettered (0 = no budget).
    retry_budget_per_second: int = 50
    retry_budget_burst: int = 100
    #: The outbox relay: how often it looks for rows to publish, and how many it takes at once.
    outbox_relay_interval_ms: int = 200
    outbox_batch_size: int = 200
    #: A published task neither started nor finished within this is published again (the broker lost it).
    outbox_redeliver_seconds: int = 60
    # -- data lifecycle (plan F1, F2) --
    #: Seconds between runs of lifecycle.enforce_retention under Celery beat (the schedule only).
    retention_interval_seconds: int = 3_600
    #: Rows deleted per transaction by retention, so that no run holds locks for long.
    retention_batch_size: int = 500
    #: Seconds a deletion request's confirmation token stays valid.
    deletion_confirm_ttl_seconds: int = 900
    #: Milliseconds the API's start waits for its database to accept connections (0: fail at once).
    #: A launcher that starts the app while PostgreSQL still starts (the harness's replays) sets it,
    #: so the app's seconds of imports overlap the database's start instead of following it.
    database_wait_ms: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        missing = [n for n in ("DATABASE_URL", "REDIS_URL") if not env.get(n)]
        if missing:
            raise SettingsError(
                f"{' and '.join(missing)} must be set, e.g. "
                "DATABASE_URL=postgresql+psycopg://user@127.0.0.1:5432/app "
                "REDIS_URL=redis://127.0.0.1:6379/0"
            )
        settings = cls(
            database_url=_normalise_db_url(env["DATABASE_URL"]),
            redis_url=env["REDIS_URL"],
            environment=env.get("STORMPROOF_ENV", "development"),
            jwt_secret=env.get("STORMPROOF_JWT_SECRET", DEV_JWT_SECRET),
            weakenings=parse_weakenings(env.get("STORMPROOF_WEAKEN")),
            idempotency_ttl_seconds=_int(env, "STORMPROOF_IDEMPOTENCY_TTL_SECONDS", 24 * 3600, 1),
            idempotency_lease_seconds=_int(env, "STORMPROOF_IDEMPOTENCY_LEASE_SECONDS", 30, 1),
            lock_ttl_ms=_int(env, "STORMPROOF_LOCK_TTL_MS", 10_000, 1),
            lock_wait_ms=_int(env, "STORMPROOF_LOCK_WAIT_MS", 5_000, 0),
            race_delay_ms=_int(env, "STORMPROOF_RACE_DELAY_MS", 0, 0),
            race_barrier=_int(env, "STORMPROOF_RACE_BARRIER", 0, 0),
            write_behind_ms=_int(env, "STORMPROOF_WRITE_BEHIND_MS", 1_000, 0),
            max_body_bytes=_int(env, "STORMPROOF_MAX_BODY_BYTES", 64 * 1024, 1),
            db_pool_size=_int(env, "STORMPROOF_DB_POOL_SIZE", 20, 1),
            db_max_overflow=_int(env, "STORMPROOF_DB_MAX_OVERFLOW", 40, 0),
            redis_pool_size=_int(env, "STORMPROOF_REDIS_POOL_SIZE", 64, 1),
            shunya_url=env.get("SHUNYA_URL", cls.shunya_url).rstrip("/"),
            shunya_webhook_secret=env.get("SHUNYA_WEBHOOK_SECRET", cls.shunya_webhook_secret),
            webhook_tolerance_seconds=_int(env, "SHUNYA_WEBHOOK_TOLERANCE_SECONDS", 300, 1),
            shunya_timeout_ms=_int(env, "SHUNYA_TIMEOUT_MS", 5_000, 1),
            task_max_retries=_int(env, "STORMPROOF_TASK_MAX_RETRIES", 5, 0),
            task_backoff_base_ms=_int(env, "STORMPROOF_TASK_BACKOFF_BASE_MS", 1_000, 1),
            task_backoff_cap_ms=_int(env, "STORMPROOF_TASK_BACKOFF_CAP_MS", 60_000, 1),
            poll_interval_ms=_int(env, "STORMPROOF_POLL_INTERVAL_MS", 2_000, 1),
            poll_budget=_int(env, "STORMPROOF_POLL_BUDGET", 60, 1),
            task_dedupe_ttl_seconds=_int(env, "STORMPROOF_TASK_DEDUPE_TTL_SECONDS", 3_600, 1),
            broker_visibility_timeout_seconds=_int(env, "STORMPROOF_BROKER_VISIBILITY_TIMEOUT_SECONDS", 300, 1),
            rate_api_per_second=_int(env, "STORMPROOF_RATE_API_PER_SECOND", 200, 0),
            rate_api_burst=_int(env, "STORMPROOF_RATE_API_BURST", 400, 1),
            rate_shunya_per_second=_int(env, "STORMPROOF_RATE_SHUNYA_PER_SECOND", 50, 0),
            rate_tasks_per_second=_int(env, "STORMPROOF_RATE_TASKS_PER_SECOND", 100, 0),
            retry_budget_per_second=_int(env, "STORMPROOF_RETRY_BUDGET_PER_SECOND", 50, 0),
            retry_budget_burst=_int(env, "STORMPROOF_RETRY_BUDGET_BURST", 100, 1),
            outbox_relay_interval_ms=_int(env, "STORMPROOF_OUTBOX_RELAY_INTERVAL_MS", 200, 10),
            outbox_batch_size=_int(env, "STORMPROOF_OUTBOX_BATCH_SIZE", 200, 1),
            outbox_redeliver_seconds=_int(env, "STORMPROOF_OUTBOX_REDELIVER_SECONDS", 60, 1),
            retention_interval_seconds=_int(env, "STORMPROOF_RETENTION_INTERVAL_SECONDS", 3_600, 1),
            retention_batch_size=_int(env, "STORMPROOF_RETENTION_BATCH_SIZE", 500, 1),
            deletion_confirm_ttl_seconds=_int(env, "STORMPROOF_DELETION_CONFIRM_TTL_SECONDS", 900, 1),
            database_wait_ms=_int(env, "STORMPROOF_DATABASE_WAIT_MS", 0, 0),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.environment not in _DEV_ENVIRONMENTS and self.jwt_secret == DEV_JWT_SECRET:
            raise SettingsError(
                f"STORMPROOF_ENV={self.environment} but STORMPROOF_JWT_SECRET is the development "
                "default; set a secret of at least 32 random characters"
            )
        if (
            self.environment not in _DEV_ENVIRONMENTS
            and self.shunya_webhook_secret == Settings.shunya_webhook_secret
        ):
            raise SettingsError(
                f"STORMPROOF_ENV={self.environment} but SHUNYA_WEBHOOK_SECRET is the development default"
            )
        if len(self.jwt_secret) < 16:
            raise SettingsError("STORMPROOF_JWT_SECRET must be at least 16 characters")

    def weakened(self, name: str) -> bool:
        return name in self.weakenings


def _normalise_db_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
