"""Counters of what the stub did, served by ``GET /admin/stats``.

Why: checkers compare what the app did against what the outside world
actually sent (jobs, injected errors, webhook attempts and duplicates).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["StubStats"]


@dataclass
class StubStats:
    """Monotonic counters since start or the last ``POST /admin/reset``.

    ``deliveries_*`` count HTTP attempts (a retried delivery counts once per
    attempt); ``duplicates_sent`` counts first attempts of deliberate
    duplicates, automatic or manual; ``deliveries_dropped`` counts deliveries
    refused because the bounded outbox was full; ``deliveries_refused`` counts
    attempts the receiver answered with a 4xx other than 409 (unauthenticated,
    unknown job, malformed): refused before the job could be applied or found
    a duplicate, so they bound from above what the receiver may have counted.
    ``api_errors_by_route`` splits ``api_errors_injected`` by route (``POST
    /v1/jobs``, ``GET /v1/jobs/{job_id}``): plan E2 counts them by endpoint.
    ``api_errors_injected`` counts every answer a client must count as an
    error: ``error_status`` answers, refusals (``api_refusals_injected``,
    ``reject_rate``) and 200s whose body is not a JSON object
    (``api_garbage_injected``, ``garbage_rate``).
    """

    api_calls: int = 0
    api_errors_injected: int = 0
    api_refusals_injected: int = 0
    api_garbage_injected: int = 0
    jobs_created: int = 0
    jobs_completed: int = 0
    jobs_failed: int = 0
    jobs_stuck: int = 0
    deliveries_attempted: int = 0
    deliveries_succeeded: int = 0
    deliveries_failed: int = 0
    deliveries_retried: int = 0
    deliveries_dropped: int = 0
    deliveries_refused: int = 0
    duplicates_sent: int = 0
    api_errors_by_route: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)
