"""The Shunya tasks: submit a job, then poll it until its result is applied.

``poll_shunya_job_status`` is the plan's polling task; it races the webhook
for the same job, and :func:`apply_job_result` makes that race harmless.

Retries (plan C1): exponential backoff with full jitter,
``uniform(0, min(cap, base * 2**n))``, up to ``STORMPROOF_TASK_MAX_RETRIES``
failures (the retry budget); polls of a pending job are not failures and have
their own budget (``STORMPROOF_POLL_BUDGET``). Out of budget, a task is
dead-lettered (plan C2).
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from celery import Task, shared_task
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from ..models import ShunyaJob
from ..obs.metrics import METRICS
from ..obs.tracing import set_trace_id
from ..problems import Problem
from ..services.shunya_client import ShunyaRateLimited, ShunyaRejected, ShunyaUnavailable
from ..services.retention import enforce_all, enforce_retention
from ..services.shunya_jobs import JobResult, apply_job_result
from ..services.outbox import PUBLICATION_HEADER
from ..services.task_queue import Again, TaskRateLimited
from ..settings import Settings
from .celery_app import POLL_TASK, RETENTION_TASK, SUBMIT_TASK
from .runtime import WorkerRuntime, runtime

__all__ = ["submit_job", "poll_shunya_job_status", "enforce_retention_task", "backoff_seconds",
           "out_of_retries", "retry_delay"]

log = logging.getLogger(__name__)

RETRYABLE = (ShunyaUnavailable, ShunyaRateLimited, TaskRateLimited, OperationalError, DBAPIError, RedisError, OSError)


def backoff_seconds(failures: int, *, base_ms: int, cap_ms: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: spreads retries so a recovering upstream is not stampeded."""
    ceiling = min(cap_ms, base_ms * (2 ** max(0, failures)))
    return (rng or random).uniform(0, ceiling) / 1000


def out_of_retries(settings: Settings, failures: int) -> bool:
    """Whether a task that failed ``failures`` times has spent its retry budget (weakened ``retry-budget``: never;
    weakened ``retries-skipped``: at its first failure)."""
    if settings.weakened("retries-skipped"):
        return failures > 0
    return failures > settings.task_max_retries and not settings.weakened("retry-budget")


def retry_delay(settings: Settings, failures: int, rng: random.Random | None = None) -> float:
    """Seconds before the next try after ``failures`` failed retries (weakened ``retry-backoff``: a fixed delay)."""
    if settings.weakened("retry-backoff"):
        return settings.task_backoff_base_ms / 1000
    return backoff_seconds(failures, base_ms=settings.task_backoff_base_ms, cap_ms=settings.task_backoff_cap_ms,
                           rng=rng)


def _after_failure(settings: Settings, exc: BaseException, failures: int) -> Again:
    """The wait after a task's ``failures``-th failed try: the backoff, floored by a rate limit's Retry-After."""
    delay = retry_delay(settings, failures - 1)
    throttled = isinstance(exc, (ShunyaRateLimited, TaskRateLimited))
    if throttled:
        delay = max(delay, exc.retry_after_s)  # type: ignore[union-attr]
    return Again(delay, failures, throttled)


@dataclass(frozen=True)
class Step:
    """What a task body decided: done, or run again later (a poll, or a retry after a failure)."""

    done: bool
    countdown: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


DONE = Step(True)


def _company(kwargs: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(kwargs.get("company_id")))
    except ValueError:
        return None


def _is_transient(exc: BaseException, settings: Settings) -> bool:
    """Whether a retry may mend the failure: an outage, a timeout, a busy lock, or a rate limit (a throttled
    task waits for its allowance; weakened ``throttle-retried``: a limit's refusal is dead-lettered at once)."""
    if isinstance(exc, (ShunyaRateLimited, TaskRateLimited)) and settings.weakened("throttle-retried"):
        return False
    if isinstance(exc, Problem):
        return exc.status in (409, 429, 503)  # a busy lock, a limit, an outage
    return isinstance(exc, RETRYABLE)


def _budget_spent(error: str) -> str:
    """A dead letter's error when the tenant's retry budget refused the retry: the failure kept beside it."""
    return f"RetryBudgetExhausted: the tenant's retry budget is spent; last failure: {error}"


def _execute(task: Task, body: Any, kwargs: dict[str, Any], *, dedupe_key: str | None) -> None:
    """Run a task body with the ledger, the retry budget and dead-lettering around it.

    A run that must happen again (a retry, the next poll) re-arms the task's
    outbox row rather than sending itself back to the broker, so a broker
    restart cannot lose it; with ``outbox`` weakened it goes back to the broker.
    """
    rt: WorkerRuntime = runtime()
    if rt.ctx.tasks.direct:
        _execute_direct(task, body, kwargs, dedupe_key=dedupe_key)
        return
    queue = rt.ctx.tasks
    settings = rt.ctx.settings
    task_id, name, company_id = task.request.id, task.name, _company(kwargs)
    set_trace_id(task.request.get("trace_id"))
    failures = int(kwargs.get("failures", 0))
    publication = task.request.get(PUBLICATION_HEADER)
    delivery = rt.run(queue.begin(task_id, name, kwargs, company_id, int(publication) if publication else None))
    if delivery is None:
        return
    try:
        try:
            step: Step = rt.run(body(rt, kwargs))
        except Exception as exc:  # noqa: BLE001 - every failure is retried or dead-lettered, never lost
            error = f"{type(exc).__name__}: {exc}"
            failures += 1
            if not _is_transient(exc, settings) or out_of_retries(settings, failures):
                rt.run(queue.give_up(task_id, name, kwargs, company_id, error, failures, dedupe_key=dedupe_key))
                return
            if not rt.run(queue.retry_allowed(company_id)):
                rt.run(queue.give_up(task_id, name, kwargs, company_id, _budget_spent(error), failures,
                                     dedupe_key=dedupe_key, refused=True))
                return
            again = _after_failure(settings, exc, failures)
            METRICS.task_retries.labels(name, "failure").inc()
            rt.run(queue.retry_later(task_id, name, {**kwargs, "failures": failures}, company_id, again, error=error))
            return
        if step.done:
            rt.run(queue.finish(task_id, name, dedupe_key=dedupe_key))
            return
        METRICS.task_retries.labels(name, step.reason).inc()
        rt.run(queue.retry_later(task_id, name, {**kwargs, **step.kwargs}, company_id, Again(step.countdown)))
    finally:
        rt.run(delivery.release())


def _execute_direct(task: Task, body: Any, kwargs: dict[str, Any], *, dedupe_key: str | None) -> None:
    """The original: the ledger around the body, retries sent back to the broker (weakening ``outbox``)."""
    rt: WorkerRuntime = runtime()
    queue = rt.ctx.tasks
    settings = rt.ctx.settings
    task_id, name, company_id = task.request.id, task.name, _company(kwargs)
    set_trace_id(task.request.get("trace_id"))
    failures = int(kwargs.get("failures", 0))
    rt.run(queue.ensure_record(task_id, name, kwargs, company_id))
    rt.run(queue.mark(task_id, "running", attempt=True))
    try:
        step: Step = rt.run(body(rt, kwargs))
    except Exception as exc:  # noqa: BLE001 - every failure is retried or dead-lettered, never lost
        error = f"{type(exc).__name__}: {exc}"
        failures += 1
        if not _is_transient(exc, settings) or out_of_retries(settings, failures):
            rt.run(queue.give_up(task_id, name, kwargs, company_id, error, failures, dedupe_key=dedupe_key))
            return
        if not rt.run(queue.retry_allowed(company_id)):
            rt.run(queue.give_up(task_id, name, kwargs, company_id, _budget_spent(error), failures,
                                 dedupe_key=dedupe_key, refused=True))
            return
        again = _after_failure(settings, exc, failures)
        METRICS.task_retries.labels(name, "failure").inc()
        rt.run(queue.mark(task_id, "retrying", error=error, again=again))
        raise task.retry(kwargs={**kwargs, "failures": failures}, countdown=again.wait_s, max_retries=None) from None
    if step.done:
        rt.run(queue.finish(task_id, name, dedupe_key=dedupe_key))
        return
    METRICS.task_retries.labels(name, step.reason).inc()
    rt.run(queue.mark(task_id, "retrying", again=Again(step.countdown)))
    raise task.retry(kwargs={**kwargs, **step.kwargs}, countdown=step.countdown, max_retries=None)


async def _load_job(rt: WorkerRuntime, job_row_id: str) -> ShunyaJob | None:
    query = select(ShunyaJob)
    # Weakened ``job-row-lookup``: the lookup's condition lost, so once two jobs exist it finds several rows
    # (MultipleResultsFound): every submit and poll fails, is dead-lettered, and no call is ever analysed.
    if not rt.ctx.settings.weakened("job-row-lookup"):
        query = query.where(ShunyaJob.id == uuid.UUID(job_row_id))
    async with rt.ctx.sessions() as session:
        return (await session.execute(query)).scalar_one_or_none()


async def _enqueue_poll(rt: WorkerRuntime, job: ShunyaJob) -> None:
    await rt.ctx.tasks.enqueue(
        POLL_TASK,
        {"job_row_id": str(job.id), "company_id": str(job.company_id), "polls": 0},
        company_id=job.company_id,
        dedupe_key=str(job.id),
        countdown=rt.ctx.settings.poll_interval_ms / 1000,
    )


async def _submit(rt: WorkerRuntime, kwargs: dict[str, Any]) -> Step:
    job = await _load_job(rt, kwargs["job_row_id"])
    if job is None:
        return DONE
    if job.shunya_job_id is None:
        created = await rt.ctx.shunya.create_job(company_id=job.company_id, call_id=job.call_id)
        shunya_job_id = str(created["job_id"])
        async with rt.ctx.sessions() as session, session.begin():
            stored = await session.execute(
                update(ShunyaJob)
                .where(ShunyaJob.id == job.id, ShunyaJob.shunya_job_id.is_(None))
                .values(shunya_job_id=shunya_job_id, status="submitted", attempts=ShunyaJob.attempts + 1)
            )
        if stored.rowcount == 0:
            log.warning("job %s was submitted twice; keeping the first Shunya job", job.id)
        job = await _load_job(rt, kwargs["job_row_id"])
        if job is None:
            return DONE  # its call was deleted meanwhile (plan F2): nothing left to poll for, nothing failed
    await _enqueue_poll(rt, job)
    return DONE


async def _poll(rt: WorkerRuntime, kwargs: dict[str, Any]) -> Step:
    settings = rt.ctx.settings
    job = await _load_job(rt, kwargs["job_row_id"])
    if job is None or job.processed_output_hash is not None:
        return DONE
    polls = int(kwargs.get("polls", 0)) + 1
    again = Step(False, settings.poll_interval_ms / 1000, {"polls": polls}, "poll")
    if polls > settings.poll_budget:
        if settings.weakened("poll-budget-dead-letter"):
            log.warning("job %s still pending after %d polls; giving up", job.id, settings.poll_budget)
            return DONE
        raise ShunyaRejected(f"poll budget of {settings.poll_budget} exhausted; job still pending")
    if job.shunya_job_id is None:
        return again
    data = await rt.ctx.shunya.get_job(company_id=job.company_id, job_id=job.shunya_job_id)
    status = data.get("status")
    if status not in ("completed", "failed"):
        return DONE if settings.weakened("poll-until-done") else again
    error = data.get("error")
    await apply_job_result(
        rt.ctx,
        JobResult(
            shunya_job_id=job.shunya_job_id,
            status=str(status),
            result=data.get("result") if isinstance(data.get("result"), dict) else None,
            output_hash=data.get("output_hash"),
            error=json.dumps(error) if error is not None else None,
        ),
        source="poll",
    )
    return DONE


@shared_task(bind=True, name=SUBMIT_TASK, max_retries=None)
def submit_job(self: Task, **kwargs: Any) -> None:
    _execute(self, _submit, kwargs, dedupe_key=None)


@shared_task(bind=True, name=POLL_TASK, max_retries=None)
def poll_shunya_job_status(self: Task, **kwargs: Any) -> None:
    _execute(self, _poll, kwargs, dedupe_key=kwargs.get("job_row_id"))


async def _retention(rt: WorkerRuntime, kwargs: dict[str, Any]) -> Step:
    """One company (``company_id``) or, from the beat schedule, every company."""
    settings = rt.ctx.settings
    batch = settings.retention_batch_size
    weakened = {f"weakened_{name}": settings.weakened(f"retention-{name.replace('_', '-')}")
                for name in ("defaults", "audit", "from_start", "batch_full")}
    weakened["weakened_scope"] = settings.weakened("retention-tenant-scope")
    company = _company(kwargs) if kwargs.get("company_id") else None
    if company is not None:
        counts = await enforce_retention(rt.ctx.sessions, company, batch_size=batch, **weakened)
        log.info("retention for %s deleted %s", company, counts.as_dict())
    else:
        for company_id, counts in (await enforce_all(
                rt.ctx.sessions, batch_size=batch,
                weakened_policies_only=settings.weakened("retention-schedule-policies"), **weakened)).items():
            log.info("retention for %s deleted %s", company_id, counts.as_dict())
    return DONE


@shared_task(bind=True, name=RETENTION_TASK, max_retries=None)
def enforce_retention_task(self: Task, **kwargs: Any) -> None:
    _execute(self, _retention, kwargs, dedupe_key=None)
