"""One request, recorded: the invoke before it leaves, the completion when it returns.

Every request of a load user goes through :func:`record_request`, so the
history holds exactly what clients asked and saw. The completion type follows
Jepsen: ``ok`` for 2xx, ``fail`` for a 4xx that means no effect, ``info`` for
everything that leaves the outcome unknown (timeouts, resets, 5xx).

While the load runs only the raw facts are kept (timestamps, status, the body
bytes, the replay header): a :class:`~stormproof.harness.history.spool.SpooledRecorder`.
What the checkers read from them (digest, company ids seen, ids, payload
fingerprint, the masked digest of a probe) is :class:`Derived` after the run,
so recording costs the load process two list appends per request
(bench/bench_recording.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from stormproof.harness.history.spool import SpooledRecorder
from stormproof.harness.history.vocabulary import LOAD_STOPPED

from .probes import masked_digest

__all__ = ["Answer", "CLIENT_IP_HEADERS", "Derived", "TRACE_HEADER", "TRACEPARENT_HEADER", "client_ip_headers",
           "record_request", "payload_fingerprint", "extract_result", "fields_seen", "sent_trace_id", "trace_echo",
           "traceparent", "together"]


class _Session(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: ``status`` 0 when no HTTP answer arrived."""

    status: int
    body: Mapping[str, Any] | list[Any] | None
    replayed: bool
    #: The answer's ``Date`` header (the server's clock, to the second), when it sent one.
    date: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def payload_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


class Derived:
    """The history's args and results from a request's raw facts (``SpooledRecorder``'s ``derive``).

    ``company_ids``: every tenant's id, looked for in each answer's body.
    """

    def __init__(self, company_ids: Iterable[str]) -> None:
        self.company_ids = tuple(company_ids)

    def args(self, args: Mapping[str, Any], payload: bytes) -> Mapping[str, Any]:
        """``payload_fp`` of the JSON body sent: the same as ``payload_fingerprint`` of the body before encoding."""
        return {**args, "payload_fp": payload_fingerprint(json.loads(payload))}

    def result(self, status: int | None, body: bytes | None, replayed: bool, extra: Any) -> Mapping[str, Any]:
        """``extra``: the ids a probe asked for (then ``body_masked`` too), or None; or a dict of them
        (``mask``), of how the answer's trace header matched the one sent (``trace``) and of a 429's
        Retry-After (``retry_after``, "" when it had none), the last two then in the result."""
        mask, trace, retry_after = ((extra.get("mask"), extra.get("trace"), extra.get("retry_after"))
                                    if isinstance(extra, dict) else (extra, None, None))
        result, parsed = extract_result(body or b"", replayed, self.company_ids)
        fields = extra.get("fields") if isinstance(extra, dict) else None
        if fields:
            result["fields_seen"] = fields_seen(parsed, fields)
        if mask is not None:
            result["body_masked"] = masked_digest(body or b"", mask)
        if trace is not None:
            result["trace"] = trace
        if retry_after is not None:
            result["retry_after"] = retry_after
        return result


#: At most this many distinct values per field in ``fields_seen``.
_FIELD_VALUES = 20


def fields_seen(body: Any, names: Iterable[str]) -> frozenset[str]:
    """``name=value`` for each distinct string value of the fields ``names`` in the rows an answer lists (a
    JSON list of objects, or an object's ``items``; an object alone is one row), at most ``_FIELD_VALUES`` per
    field. A list read under a row's path (an appointment's assignments) or filtered by a value (``?status=``)
    must list rows of that row or value only (reads-current: list-other-rows); the body itself is not kept."""
    rows = body if isinstance(body, list) else body.get("items") if isinstance(body, dict) \
        and isinstance(body.get("items"), list) else [body] if isinstance(body, dict) else []
    seen: dict[str, set[str]] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        for name in names:
            value = row.get(name)
            if isinstance(value, str):
                values = seen.setdefault(name, set())
                if len(values) < _FIELD_VALUES:
                    values.add(value)
    return frozenset(f"{name}={value}" for name, values in seen.items() for value in values)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def extract_result(raw: bytes, replayed: bool, company_ids: Iterable[str]) -> tuple[dict[str, Any], Any]:
    """The body fields the checkers read, plus every known company id the raw body mentions."""
    text = raw.decode("utf-8", errors="replace")
    body = _json(raw)
    result: dict[str, Any] = {
        "replayed": replayed,
        "body_sha256": hashlib.sha256(raw).hexdigest(),
        "company_ids_seen": frozenset(cid for cid in company_ids if cid in text),
    }
    if isinstance(body, dict):
        # stopped_at: single-active-session compares every stop's answer with the others and the final row;
        # recording_session_id: a call's link (no-lost-acknowledged-write's call-unlinked).
        for key in ("id", "appointment_id", "rep_id", "company_id", "active_session_id", "assigned_rep_id",
                    "stopped_at", "recording_session_id"):
            value = body.get(key)
            if isinstance(value, str):
                result[key] = value
        if isinstance(body.get("recording_id"), str):
            result["id"] = body["recording_id"]
        if isinstance(body.get("status"), str):
            result["status"] = body["status"]
        # A refresh's answer: the poll it queued or found queued (task-deduplicated: refresh-answer-untrue).
        if isinstance(body.get("task_id"), str):
            result["task_id"] = body["task_id"]
        if isinstance(body.get("deduplicated"), bool):
            result["deduplicated"] = body["deduplicated"]
        if isinstance(body.get("type"), str):
            result["problem"] = body["type"].rsplit("/", 1)[-1]
        # A call read's count of applied analyses (reads-current: once a delivery was answered applied, >= 1).
        if isinstance(body.get("analyses"), int) and not isinstance(body.get("analyses"), bool):
            result["analyses"] = body["analyses"]
        # A call read's copy of its analysis (job-applied-once: the analysis row's lead score and outcome).
        score = body.get("lead_score")
        if (isinstance(score, int) and not isinstance(score, bool)) or (score is None and "lead_score" in body):
            result["lead_score"] = score
        if isinstance(body.get("outcome"), str):
            result["outcome"] = body["outcome"]
        # An appointment's (or assignment's) title and window as answered (no-lost-acknowledged-write: every
        # answer describing an appointment gives the title and instants it was created with).
        for key in ("title", "starts_at", "ends_at"):
            if isinstance(body.get(key), str):
                result[key] = body[key]
        for key in ("call_days", "appointment_days", "default"):  # a retention policy (retention-enforced)
            value = body.get(key)
            if isinstance(value, (int, bool)):
                result[key] = value
        counts = body.get("counts")  # a retention run's deletions (retention-enforced: run-left-expired)
        if isinstance(counts, dict):
            kept = {key: value for key, value in counts.items() if key in ("calls", "appointments")
                    and isinstance(value, int) and not isinstance(value, bool)}
            if kept:
                result["counts"] = kept
        job = body.get("job")
        if isinstance(job, dict) and isinstance(job.get("shunya_job_id"), str):
            result["shunya_job_id"] = job["shunya_job_id"]
    elif isinstance(body, list):
        # A list's rows' statuses (dead-letter-accounting: a list asked for one status answers only that one).
        statuses = frozenset(row["status"] for row in body
                             if isinstance(row, dict) and isinstance(row.get("status"), str))
        if statuses:
            result["statuses"] = statuses
    return result, body


def together(*calls: Callable[[], Any]) -> None:
    """Run ``calls`` at once in their own greenlets and wait for all of them.

    If this user is stopped while they run (Locust kills its greenlet), they are killed
    with it, before the kill returns: a request still running after the load stopped
    would be answered after the history was written, and appear in one copy of it
    only (a distributed worker ships its history as soon as its users are stopped).
    """
    import gevent  # the load process's runtime; imported here so this module loads without its patches

    group = [gevent.spawn(call) for call in calls]
    try:
        gevent.joinall(group)
    finally:
        gevent.killall([g for g in group if not g.dead], block=True)


def record_request(
    session: _Session,
    recorder: SpooledRecorder,
    *,
    process: str,
    f: str,
    tenant: str | None,
    method: str,
    path: str,
    args: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    raw_body: bytes | None = None,
    mask: Iterable[str] | None = None,
    fingerprint: bool = False,
) -> Answer:
    """Send one request through a Locust session and record it; never raises for HTTP outcomes.

    With ``fingerprint``, the history's args get ``payload_fp`` of ``body`` (computed after the run).
    With ``mask`` (the ids a probe asked for), the result also carries ``body_masked``: a digest
    of the body with those ids and per-request fields masked, so that the answers to a foreign
    id and to a missing one can be compared.
    """
    data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
    sent_headers = dict(headers or {})
    if data is not None:
        sent_headers.setdefault("Content-Type", "application/json")
    handle = recorder.invoke(process, f, tenant, args, data if fingerprint and body is not None else None)
    try:
        with session.request(method, path, data=data, headers=sent_headers, name=f, catch_response=True) as response:
            status = int(response.status_code or 0)
            raw = response.content or b""
            error = getattr(response, "error", None)
            if status == 0 or error is not None and status == 0:
                response.failure(f"no answer: {error}")
            elif status >= 500:
                response.failure(f"HTTP {status}")
            else:
                response.success()  # 4xx here are defined, expected answers
            replayed = (response.headers or {}).get("Idempotent-Replayed") == "true" if status else False
            trace = trace_echo(sent_trace_id(sent_headers), response.headers or {}) if status else None
            # A limit's 429 says when to come back (plan C3), and so does a 503 shedding load (judged apart
            # from an error by server-errors-explained); "" records that it did not.
            retry_after = (response.headers or {}).get("Retry-After") or "" if status in (429, 503) else None
            date = (response.headers or {}).get("Date")
    except Exception as exc:  # noqa: BLE001 - an unknown outcome, recorded as info
        recorder.complete(handle, None, error=exc)
        return Answer(0, None, False)
    except BaseException as exc:  # the user was stopped mid-request (GreenletExit): sent, answer unknown
        recorder.complete(handle, None, error=f"{LOAD_STOPPED}: {type(exc).__name__}")
        raise
    if status == 0:
        recorder.complete(handle, None, error=error or "no HTTP answer")
        return Answer(0, None, False)
    extra = None if mask is None else tuple(mask)
    fields = args.get("list_fields")  # a list read the checkers judge row by row (reads-current)
    if trace is not None or retry_after is not None or fields:
        extra = {"mask": extra, "trace": trace, "retry_after": retry_after, "fields": tuple(fields or ())}
    recorder.complete(handle, status, raw, replayed, extra)
    return Answer(status, _json(raw), replayed, date)


#: The header that carries a request's trace id, both ways (plan E1).
TRACE_HEADER = "X-Trace-Id"
#: The W3C Trace Context header a caller may send instead: its trace-id is the request's trace id (plan E1).
TRACEPARENT_HEADER = "traceparent"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def traceparent(trace_id: str, span_id: str) -> str:
    """A W3C ``traceparent`` (version 00, sampled) naming ``trace_id`` (32 hex digits) and ``span_id`` (16)."""
    return f"00-{trace_id}-{span_id}-01"


def sent_trace_id(headers: Mapping[str, str]) -> str | None:
    """The trace id a request's headers give: its X-Trace-Id, else the trace-id of a well-formed traceparent."""
    given = headers.get(TRACE_HEADER)
    if given:
        return given
    match = _TRACEPARENT.match((headers.get(TRACEPARENT_HEADER) or "").strip())
    return match.group(1) if match else None

#: Request headers in which a client can name any address it likes, as proxies and CDNs write them
#: (X-Forwarded-For first): consent grants put a spoofed address in each, and the evidence must keep none.
CLIENT_IP_HEADERS = (("X-Forwarded-For", "{}"), ("X-Real-IP", "{}"), ("Forwarded", "for={}"),
                     ("True-Client-IP", "{}"), ("CF-Connecting-IP", "{}"), ("X-Client-IP", "{}"))


def client_ip_headers(addresses: Iterable[str]) -> dict[str, str]:
    """The headers of ``CLIENT_IP_HEADERS``, in order, each naming the next of ``addresses``."""
    return {name: template.format(ip) for (name, template), ip in zip(CLIENT_IP_HEADERS, addresses)}


def trace_echo(sent: str | None, headers: Mapping[str, str]) -> str | None:
    """How the answer's X-Trace-Id relates to the one sent: echoed, other, missing; None: none was sent."""
    if sent is None:
        return None
    got = headers.get(TRACE_HEADER)
    return "echoed" if got == sent else ("missing" if not got else "other")
