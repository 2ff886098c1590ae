"""The stub's HTTP surface: the Shunya ``/v1`` API and the ``/admin`` control plane.

Why: the app talks to the stub exactly as to the real Shunya, while the
harness steers faults through admin endpoints on the same port. Handlers are
thin; all state lives in ``StubCore``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import ConfigError
from .core import StubCore
from .jobs import Job, JobLimitError
from .problems import problem

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 64 * 1024
_MAX_FIELD_CHARS = 1024

Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, detail: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise _BadRequest(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _BadRequest(400, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise _BadRequest(422, "body must be a JSON object")
    return value


def _job_request(body: dict[str, Any]) -> tuple[str, str, str | None]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name in ("call_id", "company_id"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            errors[name] = "required non-empty string"
        elif len(value) > _MAX_FIELD_CHARS:
            errors[name] = f"at most {_MAX_FIELD_CHARS} characters"
        values[name] = value
    audio_url = body.get("audio_url")
    if audio_url is not None and not isinstance(audio_url, str):
        errors["audio_url"] = "must be a string or null"
    elif isinstance(audio_url, str) and len(audio_url) > 4 * _MAX_FIELD_CHARS:
        errors["audio_url"] = f"at most {4 * _MAX_FIELD_CHARS} characters"
    if errors:
        raise _BadRequest(422, "invalid job request", errors)
    return values["call_id"], values["company_id"], audio_url


def create_app(core: StubCore) -> Starlette:
    """Build the Starlette app around ``core``; its lifespan starts and stops the background tasks."""

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except _BadRequest as exc:
                extra = {"errors": exc.errors} if exc.errors else {}
                return problem(exc.status, exc.detail, **extra)

        return run

    def api(handler: Handler, route: str) -> Handler:
        """Wrap a ``/v1`` handler with the configured latency and injected errors (counted per ``route``)."""
        inner = guarded(handler)

        def count_error() -> None:
            """An answer a client must count as a failed call (``api_errors_injected``), by route too."""
            core.stats.api_errors_injected += 1
            core.stats.api_errors_by_route[route] = core.stats.api_errors_by_route.get(route, 0) + 1

        async def run(request: Request) -> Response:
            core.stats.api_calls += 1
            delay = core.api_delay_s()
            if delay > 0:
                await asyncio.sleep(delay)
            if core.inject_error():
                count_error()
                answer = problem(
                    core.config.error_status,
                    "fault injected by the Shunya stub",
                    type_="urn:shunya-stub:injected-fault",
                )
                if core.config.error_status == 429:  # Shunya's quota: come back after this many seconds
                    answer.headers["Retry-After"] = "1"
                return answer
            odd = core.inject_odd_answer()
            if odd is not None:
                count_error()
                if odd == "reject":
                    core.stats.api_refusals_injected += 1
                    return problem(422, "the job was refused by the Shunya stub (injected)",
                                   type_="urn:shunya-stub:injected-refusal")
                core.stats.api_garbage_injected += 1
                return JSONResponse(["injected", "not an object"])
            return await inner(request)

        return run

    def job_or_404(request: Request) -> Job:
        job_id = request.path_params["job_id"]
        job = core.jobs.get(job_id)
        if job is None:
            raise _BadRequest(404, f"no job {job_id!r}")
        return job

    async def create_job(request: Request) -> Response:
        call_id, company_id, audio_url = _job_request(await _json_object(request))
        core.log_call(company_id)
        try:
            job = core.create_job(call_id, company_id, audio_url)
        except JobLimitError as exc:
            raise _BadRequest(429, str(exc)) from None
        body = {"job_id": job.job_id, "status": job.status, "call_id": job.call_id, "company_id": job.company_id}
        return JSONResponse(body, status_code=201)

    async def get_job(request: Request) -> Response:
        job = job_or_404(request)
        core.log_call(job.company_id)
        if core.webhook_on_poll(job):
            await core.deliver_now(job)  # the webhook first: the poll's answer comes after the receiver's
        return JSONResponse(job.public_view())

    async def read_config(request: Request) -> Response:
        return JSONResponse(core.config.to_dict())

    async def write_config(request: Request) -> Response:
        try:
            config = core.update_config(await _json_object(request))
        except ConfigError as exc:
            raise _BadRequest(422, "invalid config", exc.errors) from None
        return JSONResponse(config.to_dict())

    async def reset(request: Request) -> Response:
        core.reset()
        return JSONResponse({"reset": True, "config": core.config.to_dict()})

    async def stats(request: Request) -> Response:
        body: dict[str, Any] = core.stats.to_dict()
        body.update(jobs_held=len(core.jobs), deliveries_pending=core.dispatcher.pending)
        return JSONResponse(body)

    async def deliveries(request: Request) -> Response:
        job_id = request.query_params.get("job_id")
        return JSONResponse({"deliveries": core.dispatcher.records(job_id)})

    async def calls(request: Request) -> Response:
        return JSONResponse({"calls": [[at, company] for at, company in core.calls]})

    async def list_jobs(request: Request) -> Response:
        return JSONResponse({"jobs": [job.admin_view() for job in core.jobs.all()]})

    async def deliver(request: Request) -> Response:
        job = job_or_404(request)
        if job.status == "pending":
            raise _BadRequest(409, f"job {job.job_id} is still pending; complete it first")
        if core.settings.webhook_url is None:
            raise _BadRequest(409, "the stub was started without a webhook URL")
        return JSONResponse(await core.deliver_now(job))

    async def complete(request: Request) -> Response:
        job = job_or_404(request)
        if job.status != "pending":
            raise _BadRequest(409, f"job {job.job_id} is already {job.status}")
        return JSONResponse(core.finish_job(job).public_view())

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = problem(exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value  # e.g. Allow on 405
        return response

    async def crash(request: Request, exc: Exception) -> Response:
        return problem(500, f"internal error in the Shunya stub: {type(exc).__name__}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await core.start()
        try:
            yield
        finally:
            await core.stop()

    routes = [
        Route("/v1/jobs", api(create_job, "POST /v1/jobs"), methods=["POST"]),
        Route("/v1/jobs/{job_id}", api(get_job, "GET /v1/jobs/{job_id}"), methods=["GET"]),
        Route("/admin/config", guarded(read_config), methods=["GET"]),
        Route("/admin/config", guarded(write_config), methods=["POST"]),
        Route("/admin/reset", guarded(reset), methods=["POST"]),
        Route("/admin/stats", guarded(stats), methods=["GET"]),
        Route("/admin/deliveries", guarded(deliveries), methods=["GET"]),
        Route("/admin/calls", guarded(calls), methods=["GET"]),
        Route("/admin/jobs", guarded(list_jobs), methods=["GET"]),
        Route("/admin/jobs/{job_id}/deliver", guarded(deliver), methods=["POST"]),
        Route("/admin/jobs/{job_id}/complete", guarded(complete), methods=["POST"]),
        Route("/admin/health", guarded(health), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: crash},
    )
    app.state.core = core
    return app
