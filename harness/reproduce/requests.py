"""From a recorded step to the HTTP request that sends it again.

The history records what each request asked (``f`` and ``args``), not its
bytes; the load generator (``harness/load/users.py``) is the one place that
says how each operation is sent, and this table mirrors it. Bodies the
history does not keep are rebuilt the way the load built them: a probe's
body from the API document (``stormproof.harness.load.probes.sample_body``, a body per
distinct payload fingerprint, so a replay with one payload stays one and a
mismatch stays two), a webhook's from the job's expected result, signed.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from stormproof.harness.history import vocabulary as v
from stormproof.harness.load import malformed
from stormproof.harness.load import probes as derive
from stormproof.harness.load.tokens import forged
from stormproof.harness.load.client import TRACE_HEADER, TRACEPARENT_HEADER, client_ip_headers, traceparent

from .case import Step

__all__ = ["Request", "ReplayContext", "build_request", "SHUNYA_DELIVER", "SUPPORTED"]

#: A replay-only step: the Shunya stub completes a job and delivers its webhook now (its admin API),
#: standing for the upstream's own delivery, which the run's history cannot hold (see select.py).
SHUNYA_DELIVER = "shunya.deliver"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any = None
    raw_body: bytes | None = None
    #: Args the history records for it when they differ from the step's (a webhook's ``payload_fp``: the
    #: fingerprint of the result this replay sent, which the checkers compare with the final state).
    args: Mapping[str, Any] | None = None


@dataclass
class ReplayContext:
    """What a request of a replay may need beyond its args: tenants, the document, answers so far."""

    tenants: list[Any]
    #: company id (fresh) -> tenant
    by_company: dict[str, Any]
    webhook_secret: str
    openapi: Callable[[], Mapping[str, Any]]
    #: parsed body of each step's answer, by step index
    bodies: dict[int, Any]
    #: fresh id -> the step index that created it (to find a deletion's confirmation token)
    created_by: dict[str, int]


def _token(ctx: ReplayContext, tenant: str | None, args: Mapping[str, Any] | None = None) -> str | None:
    """The tenant's manager token, or the rep's its request was sent as (``args.as_user`` = ``rep:<n>``)."""
    t = ctx.by_company.get(tenant or "")
    if t is None:
        return None
    user = (args or {}).get("as_user")
    reps = list(getattr(t, "rep_tokens", None) or ())
    if isinstance(user, str) and user.startswith("rep:") and user[4:].isdigit() and reps:
        return str(reps[int(user[4:]) % len(reps)])
    return str(t.manager_token)


def _auth(token: str | None, key: Any = None, **extra: str) -> dict[str, str]:
    headers = dict(extra)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(key, str):
        headers["Idempotency-Key"] = key
    return headers


def _simple(method: str, path: str, *, body: Callable[[Mapping[str, Any]], Any] | None = None,
            keyed: bool = False) -> Callable[[Step, Mapping[str, Any], ReplayContext], Request]:
    def build(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
        return Request(method, path.format(**args), _auth(_token(ctx, step.tenant, args),
                                                         args.get("idempotency_key") if keyed else None),
                       body(args) if body is not None else None)
    return build


def _list(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    extra = {"X-Company-Id": str(args["header_tenant"])} if args.get("header_tenant") else {}
    return Request("GET", "/api/v1/appointments?limit=50", _auth(_token(ctx, step.tenant), **extra))


def _dead_letters(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    """The list of dead letters, with the status filter the load asked (``args.status``) if any."""
    query = f"?status={args['status']}&limit=50" if args.get("status") else "?limit=50"
    return Request("GET", f"/api/v1/dead-letters{query}", _auth(_token(ctx, step.tenant)))


def _create(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    """The title and window the load sent (no-lost-acknowledged-write compares the row with them); a history
    recorded before the load kept them gets a new window."""
    if all(isinstance(args.get(field), str) for field in ("title", "starts_at", "ends_at")):
        body = {field: args[field] for field in ("title", "starts_at", "ends_at")}
        return Request("POST", "/api/v1/appointments", _auth(_token(ctx, step.tenant)), body)
    at = time.time() + 86400 * 400 + random.randrange(24 * 365 * 5) * 3600
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    body = {"title": "reproduce", "starts_at": time.strftime(fmt, time.gmtime(at)),
            "ends_at": time.strftime(fmt, time.gmtime(at + 1800))}
    return Request("POST", "/api/v1/appointments", _auth(_token(ctx, step.tenant)), body)


def _consent(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    """A consent grant with the evidence text, User-Agent and spoofed address headers the load sent.

    The checker compares what the consent keeps with what the history says was sent (plan F3): a grant
    sent with other text or headers than the recorded ones is judged altered evidence on a correct app,
    and one sent without the spoofed addresses cannot show an app that trusts them.
    """
    addresses = args.get("client_ips") or ([args["forwarded_for"]] if args.get("forwarded_for") else [])
    extra = client_ip_headers(str(ip) for ip in addresses)
    if args.get("user_agent"):
        extra["User-Agent"] = str(args["user_agent"])
    evidence = args.get("evidence") or "stormproof reproduce"
    return Request("POST", f"/api/v1/appointments/{args['appointment_id']}/consents",
                   _auth(_token(ctx, step.tenant), **extra), {"scope": args["scope"], "evidence": evidence},
                   args=None if args.get("evidence") else {**args, "evidence": evidence})


def _retention(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    """A retention run, recorded with the rows this attempt's seed made where the run's named its own.

    The load's args name every seeded tenant's old rows (``retention_rows``: ids and ages), which the
    checker looks for in the final state. The run's rows do not exist on a fresh stack, so each would
    read as a row a retention run deleted, on any app (retention-tenant-scope failed 0/5 with every fix
    on); this attempt's tenants' rows are the ones the load would have named.
    """
    recorded = None
    if "rows" in args:
        recorded = {**args, "rows": [dict(row) for tenant in ctx.tenants
                                     for row in getattr(tenant, "retention_rows", None) or ()]}
    return Request("POST", "/api/v1/admin/retention/run", _auth(_token(ctx, step.tenant)), args=recorded)


def _confirm(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    deletion = str(args["deletion_id"])
    made = ctx.bodies.get(ctx.created_by.get(deletion, -1))
    token = made.get("confirmation_token") if isinstance(made, dict) else None
    if args.get("wrong_token"):
        token = f"wrong-{uuid.uuid4().hex}"
    return Request("POST", f"/api/v1/deletions/{deletion}/confirm", _auth(_token(ctx, step.tenant)),
                   {"confirmation_token": token})


def _webhook(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    """The delivery as the load sent it: signed, or unsigned/stale/wrongly signed with a forged result.

    A forged delivery (``bad_signature``) sent signed would be accepted by a correct app and judged
    ``forged-delivery-accepted``: a false alarm. Its result is forged again for this replay's tenant,
    so the recorded ``payload_fp`` is the one this replay sent.
    """
    from stormproof.harness.shunya.forged import job_delivery

    job_id = str(args["job_id"])
    made = ctx.bodies.get(ctx.created_by.get(job_id, -1))
    call = args.get("call_id") or (made.get("id") if isinstance(made, dict) else None)
    bad = args.get("bad_signature")
    sent = job_delivery(job_id, call, step.tenant, ctx.webhook_secret, bad=str(bad) if bad else None,
                        forger=f"{derive.MARKER}{step.tenant}", spaced=bool(args.get("spaced")),
                        incomplete=str(args["incomplete"]) if args.get("incomplete") else None,
                        age_s=int(args.get("delayed_s") or 0))
    return Request("POST", "/api/v1/shunya/webhook", {**sent.headers, "Content-Type": "application/json"},
                   raw_body=sent.raw, args={**args, "payload_fp": sent.payload_fp})


def _own_pools(ctx: ReplayContext, company: str | None) -> dict[str, list[str]]:
    tenant = ctx.by_company.get(company or "")
    if tenant is None:
        return {}
    return {"appointment": list(tenant.appointment_ids), "rep": list(tenant.rep_ids)}


def _probe(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    """A probe derived from the API document: its method and path as recorded, its body rebuilt."""
    method, path = str(args.get("method") or "GET"), str(args.get("path") or "/")
    doc = derive.with_contract(ctx.openapi())
    route = next((r for r in derive.routes(doc) if r.name == args.get("route")), None)
    body = None
    if route is not None and route.body_schema is not None:
        seed = str(args.get("payload_fp") or args.get("probe_id") or step.index)
        body = derive.sample_body(doc, route, _own_pools(ctx, step.tenant), random.Random(seed),
                                  f"{derive.MARKER}{step.tenant}-{seed[:8]}")
    tenant = ctx.by_company.get(step.tenant or "")
    token: str | None = _token(ctx, step.tenant)
    if step.f == v.PROBE_AUTHZ and tenant is not None:
        role = args.get("role")
        # A lapsing token (live, then expired during the run) is replayed as what it was at that moment: a
        # manager's live token while priming, an expired one after. The replay does not wait for a token to
        # expire, so an app that keeps verified tokens for good is not reproduced this way.
        expired = getattr(tenant, "expired_token", None) or None
        token = {"none": None, "expired": expired, "lapsed": expired, "forged": forged(str(tenant.manager_token)),
                 "rep": (list(tenant.rep_tokens) or [None])[0], "manager": str(tenant.manager_token),
                 "lapsing": str(tenant.manager_token)}.get(role, token)
    if step.f == v.PROBE and args.get("as_role") == "rep" and tenant is not None and tenant.rep_tokens:
        token = str(list(tenant.rep_tokens)[0])  # a cross-tenant probe sent by one of the tenant's reps
    key = args.get("idempotency_key")
    return Request(method, path, _auth(token, key), body)


def _malformed_probe(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    """A malformed-body probe: the route's valid body rebuilt for the fresh stack, broken as the run broke it."""
    request = _probe(step, args, ctx)
    doc = derive.with_contract(ctx.openapi())
    route = next((r for r in derive.routes(doc) if r.name == args.get("route")), None)
    if route is None or route.body_schema is None:
        return request
    body = malformed.malform(doc, route, request.body, str(args.get("case")), str(args.get("field") or ""))
    return replace(request, body=body)


_REQUEST_DELETION = _simple("POST", "/api/v1/deletions",
                            body=lambda a: {"scope": a["scope"], "target_id": a["target_id"]})
_DELETE_APPOINTMENT = _simple("DELETE", "/api/v1/appointments/{target_id}")


def _deletion_request(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    """A deletion asked by POST /deletions, or by DELETE /appointments/{id} where the run did (``route``)."""
    return (_DELETE_APPOINTMENT if args.get("route") == "delete" else _REQUEST_DELETION)(step, args, ctx)




_BUILDERS: dict[str, Callable[[Step, Mapping[str, Any], ReplayContext], Request]] = {
    v.SESSION_START: _simple("POST", "/api/v1/recordings/sessions/start", keyed=True,
                             body=lambda a: {"appointment_id": a["appointment_id"]}),
    v.LEGACY_START: _simple("POST", "/api/v1/recordings/start", keyed=True,
                            body=lambda a: {"appointment_id": a["appointment_id"]}),
    v.SESSION_STOP: _simple("POST", "/api/v1/recordings/sessions/{session_id}/stop", keyed=True),
    v.LEGACY_STOP: _simple("POST", "/api/v1/recordings/{session_id}/stop"),
    v.ASSIGN: _simple("POST", "/api/v1/appointments/{appointment_id}/assign", keyed=True,
                      body=lambda a: {"rep_id": a["rep_id"]}),
    v.UNASSIGN: _simple("POST", "/api/v1/appointments/{appointment_id}/unassign", keyed=True),
    v.APPOINTMENT_READ: _simple("GET", "/api/v1/appointments/{appointment_id}"),
    v.SESSION_READ: _simple("GET", "/api/v1/recordings/sessions/{session_id}"),
    v.APPOINTMENT_LIST: _list,
    v.CALL_SUBMIT: _simple("POST", "/api/v1/calls", keyed=True, body=lambda a: {"appointment_id": a["appointment_id"]}),
    v.CALL_REFRESH: _simple("POST", "/api/v1/calls/{call_id}/refresh"),
    v.CALL_READ: _simple("GET", "/api/v1/calls/{call_id}"),
    v.WEBHOOK_DELIVER: _webhook,
    v.CONSENT_GRANT: _consent,
    v.APPOINTMENT_CREATE: _create,
    v.DELETION_REQUEST: _deletion_request,
    v.DELETION_CONFIRM: _confirm,
    v.RETENTION_RUN: _retention,
    v.RETENTION_POLICY_PUT: _simple("PUT", "/api/v1/retention-policy", body=lambda a: {
        "call_days": a["call_days"], "appointment_days": a["appointment_days"]}),
    v.RETENTION_POLICY_READ: _simple("GET", "/api/v1/retention-policy"),
    # a seeded dead letter (``t0.dead_letter_ids.N``); one the run's tasks made is named by no answer it
    # recorded, and is sent as it was (a 404 on a fresh stack)
    v.DEAD_LETTER_RETRY: _simple("POST", "/api/v1/dead-letters/{dead_letter_id}/retry"),
    v.DEAD_LETTER_LIST: _dead_letters,
    v.PROBE: _probe,
    v.PROBE_IDEMPOTENCY: _probe,
    v.PROBE_AUTHZ: _probe,
    v.PROBE_FILTER: _probe,
    v.PROBE_MALFORMED: _malformed_probe,
}

#: The operations a replay can send.
SUPPORTED: frozenset[str] = frozenset(_BUILDERS)


def build_request(step: Step, args: Mapping[str, Any], ctx: ReplayContext) -> Request:
    """The request of ``step`` with ``args`` already translated to the fresh stack's ids."""
    try:
        builder = _BUILDERS[step.f]
    except KeyError:
        raise ValueError(f"cannot replay operation {step.f!r}; replayable: {', '.join(sorted(SUPPORTED))}") from None
    request = builder(step, args, ctx)
    if args.get("trace_id"):
        # The load sent an X-Trace-Id (plan E1) and its tasks must carry it: a fresh one per replay, recorded
        # as sent, so that the answer's echo and the tasks' trace ids are judged against this request's own.
        # A request that gave it as a W3C traceparent (args.trace_via) gives it so again.
        trace = uuid.uuid4().hex
        header = {TRACEPARENT_HEADER: traceparent(trace, uuid.uuid4().hex[:16])} \
            if args.get("trace_via") == TRACEPARENT_HEADER else {TRACE_HEADER: trace}
        request = replace(request, headers={**request.headers, **header},
                          args={**(request.args if request.args is not None else args), "trace_id": trace})
    return request
