"""The ASGI application: ``uvicorn stormproof.reference_app.main:create_app --factory``.

Settings are read and validated when the app is built, so a bad environment
fails at start-up with a message, not at the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .api import schemas
from .api.openapi import install_openapi
from .api.routes import ROUTERS
from .context import build_context
from .db import prepare_schema
from .obs.logging import configure_logging
from .obs.metrics import METRICS, initialise_routes
from .obs.tracing import TRACE_HEADER, set_trace_id, trace_id_from_headers
from .problems import Problem, problem_response
from .settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("stormproof.reference_app")

#: Counted as a rejected delivery when its body is too large (the route never sees it).
WEBHOOK_PATH = "/api/v1/shunya/webhook"


class BodyLimitMiddleware:
    """413 for bodies over ``max_body_bytes``, declared or streamed, before any parsing.

    A declared Content-Length is checked up front; a body without one (chunked)
    is read here, at most ``max_bytes`` of it, and handed on from the buffer,
    because an error raised while the framework reads the body would come out
    as its generic 400. An oversized Shunya webhook is counted here as
    ``webhook_rejected_total{reason="oversized"}``: the route never sees it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    @staticmethod
    async def _too_large(problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") == WEBHOOK_PATH:
            METRICS.webhook_rejected.labels("oversized").inc()
        await problem_response(problem)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = Problem("payload-too-large", f"request bodies are limited to {self.max_bytes} bytes")
        declared: int | None = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await problem_response(Problem("malformed-request", "bad Content-Length"))(scope, receive, send)
                    return
        if declared is not None:
            if declared > self.max_bytes:
                await self._too_large(too_large, scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(too_large, scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        buffered: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return buffered.pop() if buffered else await receive()

        await self.app(scope, replay, send)


class MetricsMiddleware:
    """Count and time every request by its route template (not its raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, *, errors: bool = True) -> None:
        self.app = app
        # Weakened ``server-errors-counted``: a request is counted only when its handler returns, so an
        # exception's 500 (answered by the outermost middleware) never reaches http_requests_total.
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if not self.errors:
            await self.app(scope, receive, recording_send)
            self._count(scope, status, started)
            return
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self._count(scope, status, started)

    @staticmethod
    def _count(scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        METRICS.http_requests.labels(scope.get("method", ""), template, str(status)).inc()
        METRICS.http_duration.labels(scope.get("method", ""), template).observe(time.perf_counter() - started)


_TRACE_HEADERS = (TRACE_HEADER.lower().encode(), b"traceparent")


class TraceMiddleware:
    """Plan E1: a trace id per request, from the caller or new, echoed in ``X-Trace-Id``."""

    def __init__(self, app: ASGIApp, *, caller_ids: bool = True, traceparent: bool = True,
                 errors: bool = True, error_logs: bool = True) -> None:
        self.app = app
        #: False only under the weakening trace-echo: the caller's id is ignored.
        self.caller_ids = caller_ids
        #: False only under the weakening traceparent-ignored: X-Trace-Id alone is read.
        self.headers = _TRACE_HEADERS if traceparent else _TRACE_HEADERS[:1]
        #: False only under the weakening trace-on-errors: an unhandled error is answered by Starlette's
        #: outermost middleware, outside this one, so its 500 carries no X-Trace-Id.
        self.errors = errors
        #: False only under the weakening error-log-trace: the error is logged once the request's trace is
        #: cleared (as a log handler on another thread, or a context reset before the outer handler, does).
        self.error_logs = error_logs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # ASGI header names are lower case: pick the two this needs rather than decode them all.
        wanted: dict[str, str] = {}
        for name, value in scope.get("headers", []) if self.caller_ids else ():
            if name in self.headers:
                wanted.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        trace_id = trace_id_from_headers(wanted.get)
        set_trace_id(trace_id)

        async def with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (TRACE_HEADER.lower().encode(), trace_id.encode())]
            await send(message)

        if not self.errors:
            await self.app(scope, receive, with_trace)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await with_trace(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            # Answered here, inside the trace's scope: the 500 carries X-Trace-Id like any answer, and its log
            # line the request's trace id (plan E1: trace ids on error answers and in error logs).
            if started:
                raise  # half an answer is out: nothing better to send
            if not self.error_logs:
                set_trace_id(None)
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await problem_response(Problem("internal-error", "an unexpected error occurred"))(
                scope, receive, with_trace)


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return Problem("malformed-request", "the body is not valid JSON")
    return Problem(
        "validation-error",
        "the request does not match the schema",
        errors=[
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": str(e.get("type"))}
            for e in errors
        ],
    )


_HTTP_KINDS = {400: "malformed-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 413: "payload-too-large", 415: "unsupported-media-type"}


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        return _validation_problem(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        kind = _HTTP_KINDS.get(exc.status_code, "malformed-request" if exc.status_code < 500 else "internal-error")
        return Problem(kind, str(exc.detail) if exc.detail else None).response()

    # Reached only under the weakening trace-on-errors (TraceMiddleware answers unhandled errors itself): this
    # handler runs in Starlette's outermost middleware, outside the trace's, so its 500 has no X-Trace-Id.
    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return Problem("internal-error", "an unexpected error occurred").response()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    configure_logging()
    schemas.configure(settings.weakenings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(prepare_schema, settings)
        app.state.ctx = build_context(settings)
        # The outbox relay runs in every API process (several share the rows: SKIP LOCKED).
        relay = None if settings.weakened("outbox") else asyncio.create_task(
            app.state.ctx.tasks.outbox.run(), name="outbox-relay"
        )
        try:
            yield
        finally:
            if relay is not None:
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay
            await app.state.ctx.aclose()

    app = FastAPI(
        title="Stormproof reference app",
        version="0.1.0",
        description="The hardened backend of the production-hardening plan; the contract is docs/API.md in the repository.",
        lifespan=lifespan,
    )
    for router in ROUTERS:
        app.include_router(router)
    initialise_routes((method, route.path) for router in ROUTERS for route in router.routes
                      for method in sorted(getattr(route, "methods", None) or ()))
    _install_handlers(app)
    install_openapi(app)
    app.add_middleware(MetricsMiddleware, errors=not settings.weakened("server-errors-counted"))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(TraceMiddleware, caller_ids=not settings.weakened("trace-echo"),
                       traceparent=not settings.weakened("traceparent-ignored"),
                       errors=not settings.weakened("trace-on-errors"),
                       error_logs=not settings.weakened("error-log-trace"))
    return app


