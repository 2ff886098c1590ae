"""Job records and the store that creates, looks up and completes them.

Why: jobs are the state the app polls and the webhooks report on. The store
decides ids, due times and the completed/failed outcome; it does no I/O, so
it is driven by the server's single event loop without locks.
"""

from __future__ import annotations

import hashlib
import heapq
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from .results import AnalysisResult, expected_result, failure_draw, output_hash

__all__ = ["Job", "JobLimitError", "JobStatus", "JobStore", "TransitionError"]

JobStatus = Literal["pending", "completed", "failed"]


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


class JobLimitError(RuntimeError):
    """Raised when the store already holds its maximum number of jobs."""


class TransitionError(RuntimeError):
    """Raised when a job is asked to complete but is no longer pending."""


@dataclass
class Job:
    """One analysis job. ``due`` is a ``time.monotonic()`` deadline."""

    job_id: str
    call_id: str
    company_id: str
    audio_url: str | None
    created_at: str
    due: float
    created_seq: int
    status: JobStatus = "pending"
    result: AnalysisResult | None = None
    output_hash: str | None = None
    error: dict[str, str] | None = None
    completed_at: str | None = None
    completed_seq: int | None = None
    first_delivery_id: str | None = field(default=None)
    #: Never finishes (``stuck_rate``): pending for good, no webhook; the admin view says so.
    stuck: bool = False

    def public_view(self) -> dict[str, Any]:
        """The ``GET /v1/jobs/{job_id}`` body."""
        return {
            "job_id": self.job_id,
            "status": self.status,
            "call_id": self.call_id,
            "company_id": self.company_id,
            "result": self.result,
            "output_hash": self.output_hash,
            "error": self.error,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
        }

    def admin_view(self) -> dict[str, Any]:
        """The public view plus bookkeeping a checker needs (order of completion)."""
        view = self.public_view()
        view.update(
            audio_url=self.audio_url,
            created_seq=self.created_seq,
            completed_seq=self.completed_seq,
            first_delivery_id=self.first_delivery_id,
            stuck=self.stuck,
        )
        return view


class JobStore:
    """All jobs of one stub, bounded by ``max_jobs``.

    Job ids are ``shj_`` + 32 hex. Without a seed they are random; with a
    seed they are ``sha256(f"{seed}:{n}")`` where ``n`` counts every job this
    store ever created (never reset), so ids are unique for the life of the
    process yet reproducible across fresh processes given the same seed.
    """

    def __init__(self, max_jobs: int = 100_000) -> None:
        self.max_jobs = max_jobs
        self._jobs: dict[str, Job] = {}
        self._due: list[tuple[float, int, str]] = []
        self._created_seq = 0
        self._completed_seq = 0
        self._lifetime_count = 0

    def clear(self) -> None:
        """Forget every job (ids already handed out stay unique: the counter survives)."""
        self._jobs.clear()
        self._due.clear()
        self._created_seq = 0
        self._completed_seq = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def _new_id(self, seed: int | None) -> str:
        self._lifetime_count += 1
        if seed is None:
            return "shj_" + secrets.token_hex(16)
        digest = hashlib.sha256(f"shunya-job:{seed}:{self._lifetime_count}".encode()).hexdigest()
        return "shj_" + digest[:32]

    def create(
        self, call_id: str, company_id: str, audio_url: str | None, due: float, seed: int | None
    ) -> Job:
        """Create a pending job that falls due at monotonic time ``due``."""
        if len(self._jobs) >= self.max_jobs:
            raise JobLimitError(f"the stub holds {self.max_jobs} jobs; reset it")
        job_id = self._new_id(seed)
        self._created_seq += 1
        job = Job(job_id, call_id, company_id, audio_url, _now_iso(), due, self._created_seq)
        self._jobs[job_id] = job
        heapq.heappush(self._due, (due, self._created_seq, job_id))
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        """Every job, in creation order."""
        return list(self._jobs.values())

    def next_due(self) -> float | None:
        """Monotonic due time of the earliest job still in the due queue."""
        return self._due[0][0] if self._due else None

    def pop_due(self, now: float) -> list[Job]:
        """Remove and return pending jobs due at or before ``now``, in due order."""
        out: list[Job] = []
        while self._due and self._due[0][0] <= now:
            _, _, job_id = heapq.heappop(self._due)
            job = self._jobs.get(job_id)
            if job is not None and job.status == "pending":
                out.append(job)
        return out

    def finish(self, job: Job, fail_rate: float) -> Job:
        """Move ``job`` to completed or failed; it fails if its id's draw is below ``fail_rate``."""
        if job.status != "pending":
            raise TransitionError(f"job {job.job_id} is already {job.status}")
        self._completed_seq += 1
        job.completed_seq = self._completed_seq
        job.completed_at = _now_iso()
        if failure_draw(job.job_id) < fail_rate:
            job.status = "failed"
            job.error = {"code": "analysis_failed", "message": "Shunya could not analyse this call."}
        else:
            job.status = "completed"
            job.result = expected_result(job.job_id)
            job.output_hash = output_hash(job.result)
        return job
