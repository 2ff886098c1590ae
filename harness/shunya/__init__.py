'''Shunya stub: a fault-injecting stand-in for the external call-analysis service.

Why: the reference app sends sales calls to Shunya, which answers by signed
webhook while the app also polls. Webhook and polling race for the same job
and the app must apply each result exactly once. This stub plays the outside
world under the harness's control so those races and faults happen on
purpose, reproducibly (``seed``), and countably (``/admin/deliveries``,
``/admin/stats``).

Wire contract (the app is written against exactly this)
=======================================================

All bodies are JSON. Every error is ``application/problem+json``:
``{"type", "title", "status", "detail", ["errors": {field: reason}]}``.

Shunya API (subject to injected latency and 5xx)
------------------------------------------------
``POST /v1/jobs``  body ``{"call_id": str, "company_id": str, "audio_url": str | null}``
    (call_id/company_id non-empty, <= 1024 chars; audio_url optional)
    -> ``201 {"job_id": "shj_<32 hex>", "status": "pending", "call_id", "company_id"}``
    -> ``422`` invalid fields, ``400`` not JSON, ``429`` job limit reached.
``GET /v1/jobs/{job_id}``
    -> ``200 {"job_id", "status": "pending"|"completed"|"failed", "call_id",
    "company_id", "result": {...}|null, "output_hash": str|null,
    "error": {"code", "message"}|null, "created_at": iso, "completed_at": iso|null}``
    -> ``404`` unknown job.
An injected fault answers ``error_status`` (default 503; or 429, Shunya's own
quota, with ``Retry-After: 1``) with problem type
``urn:shunya-stub:injected-fault`` *before* the handler runs (no job is created).

Results: ``result == expected_result(job_id)`` and
``output_hash == output_hash(result)`` (sha256 hex of JSON with sort_keys,
separators ``(",", ":")``, ASCII). A job finishes ``complete_after_ms``
after creation; it fails (result/output_hash null, ``error`` set) when
``failure_draw(job_id) < fail_rate``; it never finishes (pending for good, no
webhook; ``stuck`` in the admin view) when ``stuck_draw(job_id) < stuck_rate``.

Webhook (stub -> app)
---------------------
``POST {webhook_url}`` with headers ``Content-Type: application/json``,
``X-Shunya-Timestamp: <unix seconds>``,
``X-Shunya-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.".encode() + raw_body)>``
and body (canonical JSON as above)::

    {"event": "job.completed"|"job.failed", "delivery_id": "dlv_<32 hex>",
     "job_id", "company_id", "call_id", "status": "completed"|"failed",
     "result": {...}|null, "output_hash": str|null, "error": {...}|null}

Deliveries are sent one at a time, in outbox order (so a seeded reorder is
reproducible); the outbox is bounded and an overflow is logged as an attempt
with ``"error": "outbox_full"``. Any 2xx is success. A retry of a failed
attempt (non-2xx or transport error) keeps the body and
delivery_id (new timestamp/signature). A deliberate duplicate has an
identical body except a new delivery_id (or the same one with
``duplicate_same_delivery_id``). Webhook hosts must be loopback unless the
stub was started with ``allow_remote_webhook``.

Admin (never faulted)
---------------------
``GET /admin/config`` / ``POST /admin/config`` (partial update, all-or-nothing,
``422`` with per-field ``errors``) - fields and defaults in ``StubConfig``:
``error_rate`` 0, ``error_status`` 503, ``reject_rate`` 0 (a share of the other
calls refused 422), ``garbage_rate`` 0 (a share answered 200 with a JSON array),
``error_first`` 0 (the next N API calls answer ``error_status``, counted from when it is set), ``latency_ms`` 0, ``latency_jitter_ms`` 0,
``complete_after_ms`` 500, ``fail_rate`` 0, ``stuck_rate`` 0, ``webhook_enabled`` true,
``webhook_duplicates`` 0, ``duplicate_same_delivery_id`` false,
``webhook_delay_ms`` 0, ``webhook_reorder`` 0 (batch size; <=1 is off),
``webhook_reorder_window_ms`` 1000, ``webhook_retry`` true,
``webhook_max_attempts`` 3, ``webhook_backoff_ms`` 250 (doubling, capped 30 s),
``webhook_timeout_ms`` 5000, ``webhook_on_poll_rate`` 0 (the share of polls of a
finished job that deliver its webhook first and answer after it), ``seed`` null.
``POST /admin/reset`` -> jobs, queued deliveries, the attempt log, stats and
config back to defaults (an attempt in flight is neither logged nor retried).
``GET /admin/stats`` -> counters (see ``StubStats``) + ``jobs_held``, ``deliveries_pending``.
``GET /admin/calls`` -> ``{"calls": [[unix seconds, company_id], ...]}``: every job
creation and poll served, oldest first (what the app's per-tenant Shunya limit let through).
``GET /admin/deliveries[?job_id=]`` -> ``{"deliveries": [{"seq", "delivery_id",
"job_id", "event", "attempt", "attempted_at", "status_code"|null, "error"|null,
"ok", "duplicate", "manual"}]}`` in attempt order.
``GET /admin/jobs`` -> ``{"jobs": [...]}`` with ``created_seq``/``completed_seq``.
``POST /admin/jobs/{job_id}/deliver`` -> send its webhook once now (a
duplicate if it was sent before); ``409`` while pending.
``POST /admin/jobs/{job_id}/complete`` -> finish it now; ``409`` if finished.
``GET /admin/health`` -> ``{"ok": true}``.

Running it
----------
``python -m stormproof.harness.shunya --host 127.0.0.1 --port N --webhook-url URL --webhook-secret S``
(``main(argv)``), or in-process ``with start_stub(webhook_url=..., webhook_secret=...) as stub:``
and steer it with ``ShunyaStubClient(stub.url)``.
'''

from .cli import main
from .client import ShunyaStubClient, ShunyaStubError
from .config import ConfigError, StubConfig
from .delivery import DeliveryRecord, WebhookEvent
from .results import AnalysisResult, canonical_json, expected_result, failure_draw, output_hash, stuck_draw
from .runner import RunningStub, start_stub
from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AnalysisResult",
    "ConfigError",
    "DeliveryRecord",
    "RunningStub",
    "ShunyaStubClient",
    "ShunyaStubError",
    "StubConfig",
    "WebhookEvent",
    "canonical_json",
    "expected_result",
    "failure_draw",
    "stuck_draw",
    "main",
    "output_hash",
    "sign",
    "start_stub",
    "verify",
]
