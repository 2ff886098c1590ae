"""``POST /api/v1/shunya/webhook``: Shunya's signed delivery of a job's result (plan A1, E2).

Authenticity: ``X-Shunya-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}." + raw body)>``
with ``X-Shunya-Timestamp`` within the tolerance window (default 300 s) of now.
Anything else is a 401, counted in ``webhook_rejected_total``, and never a 500.
Duplicates are expected: the result is applied once and later deliveries answer
``duplicate`` (``webhook_dedupe_hits_total``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from fastapi import APIRouter, Request
from pydantic import ValidationError

from ...obs.metrics import METRICS
from ...problems import Problem
from ...services.shunya_jobs import ApplyOutcome, JobResult, apply_job_result
from ..deps import Ctx
from ..schemas import WebhookIn, WebhookInLax

router = APIRouter(prefix="/api/v1/shunya", tags=["shunya"])

SIGNATURE_HEADER = "X-Shunya-Signature"
TIMESTAMP_HEADER = "X-Shunya-Timestamp"
#: Weakened ``webhook-window-tight``: a hard-coded window of a minute instead of the configured one (300 s).
_TIGHT_S = 60


def _reject(reason: str, detail: str) -> Problem:
    METRICS.webhook_rejected.labels(reason).inc()
    return Problem("unauthenticated", detail)


def verify_signature(secret: str, timestamp: str | None, signature: str | None, body: bytes, *, tolerance_s: int,
                     now: float, weakened_window: bool = False, weakened_parse: bool = False) -> None:
    """401 unless ``signature`` signs ``body`` at ``timestamp``, unix seconds within ``tolerance_s`` of now.

    The window holds both ways: a delivery dated ahead would stay valid for as long as its sender chose
    (weakened ``webhook-window-past-only``: only a past timestamp is too old). A timestamp that is no
    integer is a 401 like any bad signature (weakened ``webhook-timestamp-unguarded``: parsed unguarded,
    a 500 to whoever sends one)."""
    if not timestamp or not signature:
        raise _reject("missing_signature", f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required")
    if weakened_parse:
        sent_at = int(timestamp)
    else:
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise _reject("malformed_timestamp", f"{TIMESTAMP_HEADER} must be unix seconds") from None
    if (now - sent_at if weakened_window else abs(now - sent_at)) > tolerance_s:
        raise _reject("stale", f"{TIMESTAMP_HEADER} is outside the {tolerance_s}s tolerance window")
    expected = hmac.new(secret.encode(), f"{sent_at}.".encode() + body, hashlib.sha256).hexdigest()
    given = [part.strip()[3:] for part in signature.split(",") if part.strip().startswith("v1=")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in given):
        raise _reject("bad_signature", "signature does not match")


def _reserialised(body: bytes) -> bytes:
    """Weakened ``webhook-raw-body``: the bytes the original signed-checked, its own rendering of the body."""
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return body


@router.post("/webhook")
async def shunya_webhook(request: Request, ctx: Ctx) -> dict[str, str]:
    body = await request.body()
    settings = ctx.settings
    tolerance = _TIGHT_S if settings.weakened("webhook-window-tight") else settings.webhook_tolerance_seconds
    if not ctx.settings.weakened("webhook-signature"):  # weakened: anyone can post a result
        verify_signature(
            ctx.settings.shunya_webhook_secret,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            _reserialised(body) if ctx.settings.weakened("webhook-raw-body") else body,
            tolerance_s=tolerance,
            now=time.time(),
            weakened_window=ctx.settings.weakened("webhook-window-past-only"),
            weakened_parse=ctx.settings.weakened("webhook-timestamp-unguarded"),
        )
    try:
        model = WebhookInLax if ctx.settings.weakened("webhook-complete-result") else WebhookIn
        delivery = model.model_validate_json(body)
    except ValidationError as exc:
        METRICS.webhook_rejected.labels("malformed").inc()
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise Problem("malformed-request", "the body is not valid JSON") from None
        raise Problem("validation-error", "the delivery does not match the webhook schema",
                      errors=[{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]) from None
    outcome = await apply_job_result(
        ctx,
        JobResult(
            shunya_job_id=delivery.job_id,
            status=delivery.status,
            result=delivery.result,
            output_hash=delivery.output_hash,
            error=json.dumps(delivery.error) if delivery.error is not None else None,
            call_id=delivery.call_id,
        ),
        source="webhook",
    )
    if outcome is ApplyOutcome.unknown_job:
        raise Problem("not-found", "unknown job")
    if outcome is ApplyOutcome.duplicate and ctx.settings.weakened("duplicate-delivery-conflict"):
        # Weakened: a duplicate told "conflict" (REST's habit); Shunya takes a 409 for a failed delivery and
        # sends it again, though its result took effect the first time.
        raise Problem("conflict", "this job's result was already applied")
    return {"status": outcome.value, "delivery_id": delivery.delivery_id}
