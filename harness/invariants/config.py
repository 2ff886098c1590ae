"""Thresholds and limits for the checkers, in one small frozen value.

It travels inside the ``Snapshot`` (``snapshot.config``), so every checker
keeps the one signature ``(History, Snapshot) -> Verdict``; ``check_all``
can override it for a run. Defaults are the plan's E5 SLO targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["CheckConfig"]


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """Knobs of the checkers.

    - ``error_rate_max``: highest share of client completions that may be
      ``info`` or 5xx (slo-error-rate).
    - ``latency_p95_ms``: p95 of ok-operation latency, overall and for any
      operation without its own entry in ``latency_p95_ms_by_f``.
    - ``max_in_flight_tasks``: task records still queued/running/retrying at
      the snapshot that are tolerated (0: the run quiesced).
    - ``max_violations``: violations kept in a verdict (all are counted).
    - ``rate_limit_per_s`` / ``rate_limit_burst``: the per-tenant API limit the
      app was given (None: not checked); ``rate_limit_tolerance`` widens the
      bound for the gap between when the app decided and when the client saw it.
    - ``task_rate_per_s`` / ``task_rate_burst``: the per-tenant task-enqueue limit
      (call submissions and refreshes) the app was given (None: not checked).
    - ``shunya_rate_per_s`` / ``shunya_rate_burst``: the per-tenant limit on the app's calls
      to Shunya (job creations and polls) the app was given (None: not checked).
    - ``retry_budget_per_s`` / ``retry_budget_burst``: the per-tenant retry budget the app
      was given (plan C1: a tenant's failure-driven retries per second, after a burst); None:
      not known, not judged.
    - ``task_try_budget``: task name -> the most times one task may be tried (its
      retry budget, plus its polls for a task that polls); names absent are not judged.
    - ``task_max_retries``: the retries the app gives a task that fails transiently before it
      dead-letters it (plan C1); None: not known, early dead letters not judged.
    - ``task_backoff_ms``: the app's retry backoff (base, cap) in ms: the n-th retry after
      a failure waits uniform(0, min(cap, base * 2**n)); None: retry timing not judged.
    - ``idempotency_ttl_s``: how long the app keeps an Idempotency-Key; None: not known, key
      expiry not judged and every use of a key compared, however far apart.
    """

    error_rate_max: float = 0.01
    latency_p95_ms: float = 200.0
    latency_p95_ms_by_f: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    max_in_flight_tasks: int = 0
    max_violations: int = 100
    rate_limit_per_s: float | None = None
    rate_limit_burst: float = 0.0
    rate_limit_tolerance: float = 0.5
    task_rate_per_s: float | None = None
    task_rate_burst: float = 0.0
    shunya_rate_per_s: float | None = None
    shunya_rate_burst: float = 0.0
    retry_budget_per_s: float | None = None
    retry_budget_burst: float = 0.0
    task_try_budget: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    task_backoff_ms: tuple[int, int] | None = None
    task_max_retries: int | None = None
    idempotency_ttl_s: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate_max <= 1.0:
            raise ValueError("error_rate_max must be within [0, 1]")
        if self.latency_p95_ms <= 0 or any(v <= 0 for v in self.latency_p95_ms_by_f.values()):
            raise ValueError("latency thresholds must be positive")
        if self.max_in_flight_tasks < 0 or self.max_violations < 1:
            raise ValueError("max_in_flight_tasks >= 0 and max_violations >= 1 required")
        object.__setattr__(self, "latency_p95_ms_by_f", MappingProxyType(dict(self.latency_p95_ms_by_f)))
        object.__setattr__(self, "task_try_budget", MappingProxyType(dict(self.task_try_budget)))
        if self.task_backoff_ms is not None and not 0 < self.task_backoff_ms[0] <= self.task_backoff_ms[1]:
            raise ValueError("task_backoff_ms must be (base, cap) with 0 < base <= cap")

    def latency_threshold_ms(self, f: str | None) -> float:
        """The p95 threshold for operation ``f`` (None: overall)."""
        if f is None:
            return self.latency_p95_ms
        return self.latency_p95_ms_by_f.get(f, self.latency_p95_ms)
