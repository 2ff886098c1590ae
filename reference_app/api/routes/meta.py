"""Health, readiness, metrics and the caller's identity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from ...obs.live import pool_samples, queue_samples
from ...obs.metrics import LiveGauges, render_metrics
from ...services.outbox import outbox_samples
from ..deps import Ctx, CurrentPrincipal

router = APIRouter(tags=["meta"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(ctx: Ctx) -> Response:
    """Readiness: PostgreSQL and Redis answer."""
    checks: dict[str, str] = {}
    try:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await ctx.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unready", "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(ctx: Ctx) -> Response:
    samples = list(pool_samples(ctx)) + await queue_samples(ctx) + await outbox_samples(ctx.sessions)
    body, content_type = render_metrics(LiveGauges(lambda: samples))
    return Response(content=body, media_type=content_type)


@router.get("/api/v1/me")
async def me(principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return {
        "company_id": str(principal.company_id),
        "user_id": str(principal.user_id),
        "role": principal.role,
        "weakenings": sorted(ctx.settings.weakenings),
    }
