"""Weakenings: named switches that turn one fix of the plan off.

``STORMPROOF_WEAKEN=session-lock,session-unique-index`` makes the app behave
like the unhardened original for those fixes only. The harness runs a scenario
with a fix weakened to prove its checkers notice the fix is missing; a checker
that still passes with every guard of its invariant off is a checker that
cannot fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["WEAKENINGS", "Weakening", "parse_weakenings", "UnknownWeakeningError"]


@dataclass(frozen=True, slots=True)
class Weakening:
    name: str
    plan_item: str
    removes: str


WEAKENINGS: dict[str, Weakening] = {
    w.name: w
    for w in (
        Weakening(
            "session-lock",
            "A2",
            "the Redis lock recording_session:start:{appointment_id} around session start",
        ),
        Weakening(
            "session-unique-index",
            "A2/B3",
            "the partial unique index idx_recording_sessions_active_appointment "
            "(dropped at app start-up), and the handling of its violation",
        ),
        Weakening(
            "assignment-lock",
            "A3",
            "the Redis lock appointment:assign:{appointment_id} around assignment",
        ),
        Weakening(
            "assignment-guard",
            "A3/B3",
            "the database guards on assignments: the row lock on the appointment, the partial "
            "unique index on active assignments and the exclusion constraint against "
            "double-booking a rep (dropped at app start-up)",
        ),
        Weakening(
            "idempotency-keys",
            "B1",
            "Idempotency-Key handling: the header is ignored, nothing is stored or replayed",
        ),
        Weakening(
            "tenant-guard",
            "D2",
            "the tenant ownership check on ids: a resource is fetched by id alone, so another "
            "tenant's id is read and written instead of answering 404",
        ),
        Weakening(
            "tenant-from-header",
            "D2",
            "the rule that the tenant comes only from the token: an X-Company-Id header "
            "chosen by the client overrides it",
        ),
        Weakening(
            "job-lock",
            "A1",
            "the Redis lock shunya_job:{job_id} around applying a Shunya result",
        ),
        Weakening(
            "job-db-guard",
            "A1/B3",
            "the database's last word on applying a result: the conditional update on "
            "shunya_jobs.processed_output_hash and the unique index on call_analyses per job",
        ),
        Weakening(
            "task-dedupe",
            "A4/B2",
            "task de-duplication: the same work item may be enqueued any number of times",
        ),
        Weakening(
            "rate-limit",
            "C3",
            "the per-tenant rate limits on API requests, Shunya calls and task enqueues",
        ),
        Weakening(
            "dead-letter-queue",
            "C2",
            "the dead-letter table: a task that exhausts its retries is logged and dropped",
        ),
        Weakening(
            "outbox",
            "A4/C1",
            "the transactional outbox: tasks are published straight to the broker after the "
            "commit, and retries go back to the broker, so a broker (Redis) restart loses them",
        ),
        Weakening(
            "consent-check",
            "F3",
            "the consent check: recording sessions start and calls are submitted for analysis "
            "on appointments without a recorded consent",
        ),
    )
}


class UnknownWeakeningError(ValueError):
    def __init__(self, unknown: list[str]) -> None:
        known = ", ".join(sorted(WEAKENINGS))
        super().__init__(
            f"unknown weakening(s) {', '.join(unknown)}; known names: {known}"
        )


def parse_weakenings(value: str | Iterable[str] | None) -> frozenset[str]:
    """Parse a comma-separated list (or an iterable) of names; unknown names are an error."""
    if value is None:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [item.strip() for item in items if item and item.strip()]
    unknown = [n for n in names if n not in WEAKENINGS]
    if unknown:
        raise UnknownWeakeningError(unknown)
    return frozenset(names)
