"""Deterministic analysis results, derived from the job id alone.

Why: a checker must know, without asking the stub, what result the app
should have stored for a job. Everything here is a pure function of the
job id, so the stub, the app's tests and the checker all agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final, Literal, TypedDict

__all__ = [
    "AnalysisResult",
    "canonical_json",
    "expected_result",
    "failure_draw",
    "output_hash",
    "stuck_draw",
]

Sentiment = Literal["positive", "neutral", "negative"]
Outcome = Literal["won", "lost", "follow_up"]

_SENTIMENTS: Final[tuple[Sentiment, ...]] = ("positive", "neutral", "negative")
_OUTCOMES: Final[tuple[Outcome, ...]] = ("won", "lost", "follow_up")


class AnalysisResult(TypedDict):
    """The result Shunya reports for a completed job."""

    summary: str
    sentiment: Sentiment
    lead_score: int
    outcome: Outcome
    talk_ratio: float


def _digest(label: bytes, job_id: str) -> bytes:
    return hashlib.sha256(label + job_id.encode("utf-8")).digest()


def expected_result(job_id: str) -> AnalysisResult:
    """Return the result the stub reports for ``job_id`` (pure, deterministic).

    ``talk_ratio`` is a two-decimal value in [0.05, 0.95]; it is never
    integral, so its JSON form ("0.42") is the same in any language and the
    canonical JSON (hence ``output_hash``) is reproducible outside Python.
    """
    d = hashlib.sha256(job_id.encode("utf-8")).digest()
    sentiment = _SENTIMENTS[d[0] % len(_SENTIMENTS)]
    lead_score = int.from_bytes(d[1:3], "big") % 101
    outcome = _OUTCOMES[d[3] % len(_OUTCOMES)]
    talk_ratio = (5 + int.from_bytes(d[4:6], "big") % 91) / 100
    summary = (
        f"Call analysed under job {job_id}: {sentiment} conversation, "
        f"lead score {lead_score}, outcome {outcome}."
    )
    return {
        "summary": summary,
        "sentiment": sentiment,
        "lead_score": lead_score,
        "outcome": outcome,
        "talk_ratio": talk_ratio,
    }


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` canonically: sorted keys, no spaces, ASCII, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


def output_hash(result: AnalysisResult | dict[str, Any]) -> str:
    """Return the hex sha256 of the canonical JSON of ``result``.

    The stub sends this alongside every result so the app can store it and a
    checker can compare it with ``output_hash(expected_result(job_id))``.
    """
    return hashlib.sha256(canonical_json(result)).hexdigest()


def stuck_draw(job_id: str) -> float:
    """Return a number in [0, 1) fixed by ``job_id``, drawn apart from :func:`failure_draw`.

    A job never finishes (stays pending for good, no webhook) when this draw is below the configured
    ``stuck_rate``: Shunya losing a job. What a poll budget is for (plan C2: never polled forever, never
    dropped silently).
    """
    return int.from_bytes(_digest(b"shunya-stuck:", job_id)[:8], "big") / 2**64


def failure_draw(job_id: str) -> float:
    """Return a number in [0, 1) fixed by ``job_id``.

    A job fails when this draw is below the configured ``fail_rate``; tying the
    draw to the id (not to timing or call order) makes a run's failures
    reproducible and lets a checker predict them for a known fail_rate.
    """
    return int.from_bytes(_digest(b"shunya-fail:", job_id)[:8], "big") / 2**64
