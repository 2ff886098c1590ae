"""Run-time fault knobs of the stub, with validation.

Why: the harness turns faults on and off while a scenario runs, through
``POST /admin/config``. Every value is checked here so a typo or an
out-of-range value is a 4xx, not a stub that silently misbehaves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["ConfigError", "StubConfig"]

_HOUR_MS = 3_600_000


class ConfigError(ValueError):
    """Raised when a config update is invalid; ``errors`` maps field to reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
        self.errors = errors


@dataclass(frozen=True)
class StubConfig:
    """Fault-injection settings; the defaults describe a healthy Shunya.

    API faults (``error_rate``, ``error_status``, ``latency_ms``,
    ``latency_jitter_ms``) apply to ``/v1`` only; admin endpoints stay
    reliable so the harness can always steer the stub.
    """

    error_rate: float = 0.0
    error_status: int = 503
    #: The share of API calls (of those not answered ``error_status``) refused 422 with a problem body: Shunya
    #: turning the work down for good (a refusal; a client must not take it for a job, nor retry it).
    reject_rate: float = 0.0
    #: The share of API calls (of those neither errored nor refused) answered 200 with JSON that is not an
    #: object (a gateway's or a new version's body): a client must treat it as a failed call, not use it.
    garbage_rate: float = 0.0
    #: The next this many API calls are answered ``error_status`` whatever the rate (counted from when it is
    #: set): a task's run of failures replayed exactly (``stormproof reproduce``), not drawn again.
    error_first: int = 0
    latency_ms: int = 0
    latency_jitter_ms: int = 0
    complete_after_ms: int = 500
    fail_rate: float = 0.0
    #: The share of jobs that never finish (drawn by job id, ``stuck_draw``): pending for good, no webhook.
    stuck_rate: float = 0.0
    webhook_enabled: bool = True
    webhook_duplicates: int = 0
    duplicate_same_delivery_id: bool = False
    webhook_delay_ms: int = 0
    webhook_reorder: int = 0
    webhook_reorder_window_ms: int = 1000
    webhook_retry: bool = True
    webhook_max_attempts: int = 3
    webhook_backoff_ms: int = 250
    webhook_timeout_ms: int = 5000
    #: The share of polls (``GET /v1/jobs/{id}``) of a finished job that first deliver its webhook, once and at
    #: once (as ``POST /admin/jobs/{id}/deliver``), and answer only after the receiver answered it: the webhook
    #: wins the race against a poll that found the job unapplied, so the poll's result is a duplicate there.
    #: Why: the two race in production only now and then; this makes the interleaving common.
    webhook_on_poll_rate: float = 0.0
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def updated(self, patch: Mapping[str, Any]) -> StubConfig:
        """Return a copy with ``patch`` applied; raise ``ConfigError`` if any value is invalid.

        The update is all-or-nothing: one bad field rejects the whole patch.
        """
        errors: dict[str, str] = {}
        clean: dict[str, Any] = {}
        for name, value in patch.items():
            rule = _RULES.get(name)
            if rule is None:
                errors[name] = "unknown setting"
                continue
            problem = rule(value)
            if problem is not None:
                errors[name] = problem
            else:
                clean[name] = float(value) if name in _RATES else value
        if errors:
            raise ConfigError(errors)
        return dataclasses.replace(self, **clean)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rate(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number"
    if not 0.0 <= value <= 1.0:
        return "must be between 0 and 1"
    return None


def _int_range(low: int, high: int):
    def check(value: Any) -> str | None:
        if not _is_int(value):
            return "must be an integer"
        if not low <= value <= high:
            return f"must be between {low} and {high}"
        return None

    return check


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be a boolean"


def _seed(value: Any) -> str | None:
    if value is None:
        return None
    if not _is_int(value):
        return "must be an integer or null"
    if not 0 <= value < 2**63:
        return "must be between 0 and 2**63-1"
    return None


def _error_status(value: Any) -> str | None:
    """A 5xx (an outage), or 429: Shunya's own quota, answered with a Retry-After (a throttle, not a failure)."""
    if not _is_int(value) or not (value == 429 or 500 <= value <= 599):
        return "must be 429 or between 500 and 599"
    return None


_RATES = frozenset({"error_rate", "fail_rate", "stuck_rate", "webhook_on_poll_rate"})

_RULES = {
    "error_rate": _rate,
    "error_status": _error_status,
    "reject_rate": _rate,
    "garbage_rate": _rate,
    "error_first": _int_range(0, 1_000_000),
    "latency_ms": _int_range(0, 60_000),
    "latency_jitter_ms": _int_range(0, 60_000),
    "complete_after_ms": _int_range(0, _HOUR_MS),
    "fail_rate": _rate,
    "stuck_rate": _rate,
    "webhook_enabled": _bool,
    "webhook_duplicates": _int_range(0, 10),
    "duplicate_same_delivery_id": _bool,
    "webhook_delay_ms": _int_range(0, _HOUR_MS),
    "webhook_reorder": _int_range(0, 100),
    "webhook_reorder_window_ms": _int_range(1, 60_000),
    "webhook_on_poll_rate": _rate,
    "webhook_retry": _bool,
    "webhook_max_attempts": _int_range(1, 10),
    "webhook_backoff_ms": _int_range(0, 60_000),
    "webhook_timeout_ms": _int_range(1, 60_000),
    "seed": _seed,
}

assert set(_RULES) == {f.name for f in dataclasses.fields(StubConfig)}
