"""Probes derived from the app's OpenAPI document, not listed by hand.

A hand list of routes to probe forgets the route added next month. Here the
routes come from the document the system under test serves at
``/openapi.json`` (the reference app's, or a user's own backend implementing
docs/API.md), so every route is covered the day it exists:

- **cross-tenant**: every operation with a path parameter (any method), called
  with another tenant's id of the right kind, and then with a random id that
  exists nowhere (the control). The promise (plan D2): the foreign id answers
  exactly like the missing one, 404, and changes nothing;
- **idempotency**: every operation that declares an ``Idempotency-Key`` header
  parameter: replayed with the same key and payload, reused with another
  payload, sent twice at once, sent without the key where it is required, the
  same key used by another tenant, and a malformed key (plan B1, IETF
  Idempotency-Key draft);
- **authorization**: every operation that declares a security requirement,
  called with no token, an expired token, a forged token, a rep's token where
  the requirement names the ``manager`` role (OpenAPI 3.1 role names), and a
  manager's token on reads.

Everything here is a pure function of the document (and of the ids and the
random generator it is given), so it is unit-tested without a server. The
kind of an id is its parameter's name without ``_id`` (``appointment_id`` ->
``appointment``; a bare ``id`` takes the singular of the segment before it),
and :func:`learn` files the ids an answer carries under the same kinds.
A document that declares no security at all is read as docs/API.md says:
every route under ``/api/`` needs a token.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUTHZ_ROLES",
    "CONTRACT_KEYS",
    "CONTRACT_PUBLIC",
    "CONTRACT_MANAGER_ONLY",
    "EXPIRY_PROBE_MAX_TTL_S",
    "EXPIRY_PROBE_WAIT_TTLS",
    "IDEMPOTENCY_PROBES",
    "MALFORMED_KEYS",
    "MARKER",
    "Route",
    "authz_roles",
    "authz_turns",
    "foreign_for_body",
    "vary_enums",
    "authz_routes",
    "CONTRACT_ROUTES",
    "CONTRACT_QUERIES",
    "with_contract",
    "body_id_fields",
    "query_id_fields",
    "creators",
    "cross_tenant_routes",
    "own_reads",
    "fill_path",
    "idempotent_routes",
    "query_filters",
    "kind_of",
    "learn",
    "masked_digest",
    "request_fingerprint",
    "routes",
    "sample_body",
]

#: Written into every string a generated body carries, followed by the prober's tenant: a row of
#: another tenant holding it in the final state was changed by a probe.
MARKER = "sp-probe-"
#: The callers an authorization probe may pretend to be.
AUTHZ_ROLES = ("none", "expired", "lapsed", "forged", "rep", "manager")
#: The idempotency situations a probe may create.
IDEMPOTENCY_PROBES = ("replay", "mismatch", "concurrent", "missing", "other-tenant", "malformed")
#: Keys outside the format (1 to 255 printable ASCII characters): a space, a control character (a tab, which
#: HTTP still carries inside a header value) and one character too many. Each call of a probe makes them
#: unique with its own suffix, so that a weakened app that stores one cannot replay another's answer.
#: The ``expired`` situation (the same key and payload again once the key's TTL is over) is tried only when
#: the app's TTL is at most this long: a probe waits it out.
EXPIRY_PROBE_MAX_TTL_S = 10.0
#: An ``expired`` probe's second request waits this many TTLs, plus a second, after the first answer.
EXPIRY_PROBE_WAIT_TTLS = 1.5
MALFORMED_KEYS = ("sp key {}", "sp\tkey-{}", "k{}".ljust(256 + 2, "k"))

_WRITES = frozenset(("POST", "PUT", "PATCH", "DELETE"))
_METHODS = ("get", "post", "put", "patch", "delete")
_PARAM = re.compile(r"\{([^}/]+)\}")
_KEY_HEADER = "idempotency-key"
#: Body keys that are not ids of the answer's resource.
_NOT_LEARNT = frozenset(("company_id", "idempotency_key", "trace_id", "task_id"))


@dataclass(frozen=True, slots=True)
class Route:
    """One operation of the document, as the probes need it."""

    method: str                                 # upper case
    path: str                                   # the template, e.g. /api/v1/appointments/{appointment_id}
    id_params: tuple[tuple[str, str], ...]      # (path parameter, kind of id), in path order
    idempotency: str | None                     # None, "optional" or "required"
    token: bool                                 # needs a bearer token
    roles: tuple[str, ...]                      # roles the security requirement names; () = any role
    body_schema: Mapping[str, Any] | None       # the JSON request body schema, $refs resolved lazily

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def write(self) -> bool:
        return self.method in _WRITES


def _singular(word: str) -> str:
    word = word.replace("-", "_")
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def kind_of(param: str, path: str = "") -> str:
    """The kind of id a path parameter names: ``appointment_id`` -> ``appointment``."""
    name = param.lower()
    for suffix in ("_id", "id"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)].rstrip("_-")
    if name == "id" and path:
        before = path.split("{" + param + "}")[0].rstrip("/").rsplit("/", 1)[-1]
        return _singular(before)
    return name


def _resolve(doc: Mapping[str, Any], schema: Any) -> Any:
    seen = 0
    while isinstance(schema, Mapping) and "$ref" in schema and seen < 16:
        ref = str(schema["$ref"])
        node: Any = doc
        for part in ref.lstrip("#/").split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        schema, seen = node, seen + 1
    return schema


#: The routes docs/API.md reserves to the manager role (method, path with every parameter as ``{}``), whatever
#: the app's own OpenAPI document says. A document generated from the code loses the requirement with the check:
#: a route opened to reps by mistake declares itself open, and probes taken from the document alone never sent
#: a rep to it (an unassign any user could call passed tenant-probe, 2026-12-04).
CONTRACT_MANAGER_ONLY: frozenset[tuple[str, str]] = frozenset((
    ("POST", "/api/v1/appointments"),
    ("PATCH", "/api/v1/appointments/{}"),
    ("DELETE", "/api/v1/appointments/{}"),
    ("POST", "/api/v1/appointments/{}/assign"),
    ("POST", "/api/v1/appointments/{}/unassign"),
    ("POST", "/api/v1/reps"),
    ("GET", "/api/v1/dead-letters"),
    ("POST", "/api/v1/dead-letters/{}/retry"),
    ("GET", "/api/v1/deletions"),
    ("POST", "/api/v1/deletions"),
    ("POST", "/api/v1/deletions/{}/confirm"),
    ("GET", "/api/v1/retention-policy"),
    ("PUT", "/api/v1/retention-policy"),
    ("POST", "/api/v1/admin/retention/run"),
))


#: The only /api/v1 route docs/API.md lets anyone call without a token (it is signed by Shunya instead).
CONTRACT_PUBLIC: frozenset[tuple[str, str]] = frozenset((("POST", "/api/v1/shunya/webhook"),))

#: The writes docs/API.md gives an Idempotency-Key, and whether it is required, whatever the app's document says
#: (the reference app's document derives the header from the code, so a route whose key requirement was dropped
#: declares itself optional and was never probed without a key). A document may make a key stronger, not weaker.
CONTRACT_KEYS: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/recordings/sessions/start"): "required",
    ("POST", "/api/v1/recordings/sessions/{}/stop"): "required",
    ("POST", "/api/v1/appointments/{}/assign"): "required",
    ("POST", "/api/v1/appointments/{}/unassign"): "optional",
    ("POST", "/api/v1/recordings/start"): "optional",
    ("POST", "/api/v1/recordings/{}/stop"): "optional",
    ("POST", "/api/v1/appointments"): "optional",
    ("PATCH", "/api/v1/appointments/{}"): "optional",
    ("POST", "/api/v1/appointments/{}/consents"): "optional",
    ("POST", "/api/v1/reps"): "optional",
    ("POST", "/api/v1/calls"): "optional",
}


def _object(required: Mapping[str, Any], optional: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": {**required, **(optional or {})}, "required": list(required)}


_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}
_DAYS = {"type": "integer", "minimum": 1, "maximum": 36500}

#: Every ``/api/v1`` operation of docs/API.md's endpoint table, with the JSON body it takes (None: no body).
#: A route the app's document leaves out (a hand-written document gone stale, a route registered outside
#: it) is still a door to another tenant's rows, a write that must honour its key and a route that must
#: refuse a rep: :func:`with_contract` adds each one the document lacks, so no promise hangs on the document.
CONTRACT_ROUTES: dict[tuple[str, str], Mapping[str, Any] | None] = {
    ("GET", "/api/v1/me"): None,
    ("GET", "/api/v1/appointments"): None,
    ("POST", "/api/v1/appointments"): _object({"title": _TEXT, "starts_at": {"type": "string", "format": "date-time"},
                                               "ends_at": {"type": "string", "format": "date-time"}}),
    ("GET", "/api/v1/appointments/{appointment_id}"): None,
    ("PATCH", "/api/v1/appointments/{appointment_id}"): _object({}, {"title": _TEXT}),
    ("DELETE", "/api/v1/appointments/{appointment_id}"): None,
    ("POST", "/api/v1/appointments/{appointment_id}/assign"): _object({"rep_id": _ID}),
    ("POST", "/api/v1/appointments/{appointment_id}/unassign"): None,
    ("GET", "/api/v1/appointments/{appointment_id}/assignments"): None,
    ("POST", "/api/v1/appointments/{appointment_id}/consents"): _object(
        {"scope": {"type": "string", "enum": ["recording", "analysis"]}, "evidence": _TEXT}),
    ("GET", "/api/v1/appointments/{appointment_id}/consents"): None,
    ("GET", "/api/v1/reps"): None,
    ("POST", "/api/v1/reps"): _object({"email": {"type": "string", "format": "email"}, "name": _TEXT}),
    ("GET", "/api/v1/reps/{rep_id}"): None,
    ("POST", "/api/v1/recordings/sessions/start"): _object({"appointment_id": _ID}),
    ("POST", "/api/v1/recordings/sessions/{session_id}/stop"): None,
    ("GET", "/api/v1/recordings/sessions"): None,
    ("GET", "/api/v1/recordings/sessions/{session_id}"): None,
    ("POST", "/api/v1/recordings/start"): _object({"appointment_id": _ID}),
    ("POST", "/api/v1/recordings/{recording_id}/stop"): None,
    ("POST", "/api/v1/calls"): _object({}, {"appointment_id": _ID, "recording_session_id": _ID}),
    ("GET", "/api/v1/calls"): None,
    ("GET", "/api/v1/calls/{call_id}"): None,
    ("POST", "/api/v1/calls/{call_id}/refresh"): None,
    ("POST", "/api/v1/shunya/webhook"): None,
    ("GET", "/api/v1/dead-letters"): None,
    ("POST", "/api/v1/dead-letters/{dead_letter_id}/retry"): None,
    ("GET", "/api/v1/retention-policy"): None,
    ("PUT", "/api/v1/retention-policy"): _object({"call_days": _DAYS, "appointment_days": _DAYS}),
    ("POST", "/api/v1/admin/retention/run"): None,
    ("GET", "/api/v1/deletions"): None,
    ("POST", "/api/v1/deletions"): _object({"scope": {"type": "string", "enum": ["appointment", "company"]},
                                            "target_id": _ID}),
    ("POST", "/api/v1/deletions/{deletion_id}/confirm"): _object({"confirmation_token": _TEXT}),
}

#: The query filters docs/API.md gives the contract's lists: a filter by another tenant's id, or by a value,
#: must bring back no other tenant's rows.
CONTRACT_QUERIES: dict[tuple[str, str], tuple[Mapping[str, Any], ...]] = {
    ("GET", "/api/v1/recordings/sessions"): (
        {"name": "appointment_id", "in": "query", "schema": {"type": "string"}},
        {"name": "status", "in": "query",
         "schema": {"type": "string", "enum": ["pending", "recording", "stopped", "failed"]}}),
    ("GET", "/api/v1/dead-letters"): (
        {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["dead", "retried"]}},),
}


def _key_with_contract(method: str, path: str, key: str | None) -> str | None:
    """The document's Idempotency-Key requirement, raised to the contract's where the contract's is stronger."""
    contract = CONTRACT_KEYS.get((method.upper(), _PARAM.sub("{}", path)))
    return "required" if "required" in (key, contract) else key or contract


def _with_contract(method: str, path: str, roles: tuple[str, ...]) -> tuple[str, ...]:
    """The document's roles, plus the manager role where the contract reserves the route to it."""
    if (method.upper(), _PARAM.sub("{}", path)) in CONTRACT_MANAGER_ONLY and "manager" not in roles:
        return tuple(sorted({*roles, "manager"} - {"rep"}))
    return roles


def _security(doc: Mapping[str, Any], operation: Mapping[str, Any], path: str) -> tuple[bool, tuple[str, ...]]:
    requirement = operation.get("security", doc.get("security"))
    if requirement is None:  # nothing declared: docs/API.md's rule
        return path.startswith("/api/"), ()
    if not requirement:
        return False, ()
    roles: set[str] = set()
    for alternative in requirement:
        if not alternative:  # an empty alternative: anonymous access allowed
            return False, ()
        for scopes in alternative.values():
            roles.update(str(scope) for scope in scopes or ())
    return True, tuple(sorted(roles))


def routes(doc: Mapping[str, Any]) -> tuple[Route, ...]:
    """Every operation of an OpenAPI 3 document, in document order."""
    out: list[Route] = []
    for path, item in (doc.get("paths") or {}).items():
        if not isinstance(item, Mapping):
            continue
        shared = list(item.get("parameters") or ())
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, Mapping):
                continue
            params = [_resolve(doc, p) for p in shared + list(operation.get("parameters") or ())]
            in_path = {p.get("name") for p in params if isinstance(p, Mapping) and p.get("in") == "path"}
            in_path |= set(_PARAM.findall(path))
            ordered = [name for name in _PARAM.findall(path) if name in in_path]
            key = None
            for p in params:
                if isinstance(p, Mapping) and p.get("in") == "header" and str(p.get("name", "")).lower() == _KEY_HEADER:
                    key = "required" if p.get("required") else "optional"
            token, roles = _security(doc, operation, path)
            # docs/API.md: every /api/v1 route needs a token but Shunya's signed webhook, whatever the document
            # declares (a route whose check was dropped declares itself open, and was never probed for its 401).
            token = token or (path.startswith("/api/v1/") and (method.upper(), path) not in CONTRACT_PUBLIC)
            roles = _with_contract(method, path, roles) if token else roles
            key = _key_with_contract(method, path, key)
            body = None
            content = (_resolve(doc, operation.get("requestBody")) or {}).get("content") or {}
            for media, spec in content.items():
                if "json" in media and isinstance(spec, Mapping):
                    body = _resolve(doc, spec.get("schema")) or {}
                    break
            out.append(Route(
                method=method.upper(), path=path,
                id_params=tuple((name, kind_of(name, path)) for name in ordered),
                idempotency=key, token=token, roles=roles, body_schema=body,
            ))
    return tuple(out)


def with_contract(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document with every operation of the contract (:data:`CONTRACT_ROUTES`) it lacks added.

    The probes draw from this: a route is probed whether or not the document names it. An operation the
    document names is kept as it is (its parameter names, body schema, roles and key, each raised to the
    contract's where the contract's is stronger by :func:`routes`); an added one takes the contract's body and
    query filters (:data:`CONTRACT_QUERIES`), and is filed under the document's spelling of its path where the
    document names the path with other parameter names.
    """
    paths: dict[str, Any] = {path: dict(item) if isinstance(item, Mapping) else item
                             for path, item in (doc.get("paths") or {}).items()}
    spelled = {_PARAM.sub("{}", path): path for path in paths}
    for (method, path), body in CONTRACT_ROUTES.items():
        key = spelled.setdefault(_PARAM.sub("{}", path), path)
        item = paths.setdefault(key, {})
        if not isinstance(item, dict) or isinstance(item.get(method.lower()), Mapping):
            continue
        operation: dict[str, Any] = {"parameters": [dict(q) for q in CONTRACT_QUERIES.get((method, path), ())]}
        if body is not None:
            operation["requestBody"] = {"content": {"application/json": {"schema": body}}}
        if (method, path) in CONTRACT_PUBLIC:
            operation["security"] = []
        item[method.lower()] = operation
    return {**doc, "paths": paths}


def cross_tenant_routes(all_routes: Iterable[Route]) -> tuple[Route, ...]:
    """Operations that take an id in their path and a token: each is a door to another tenant's row."""
    return tuple(r for r in all_routes if r.id_params and r.token)


def own_reads(all_routes: Iterable[Route]) -> tuple[Route, ...]:
    """Every read a tenant's user may send (``GET`` with a token), each to be sent for the tenant's own rows: a
    list or a read by id that lost its tenant condition answers other tenants' rows to its owner, which no
    cross-tenant probe (another tenant's id, a missing id) ever asks it for."""
    return tuple(r for r in all_routes if r.method == "GET" and r.token)


def creators(all_routes: Iterable[Route]) -> dict[str, tuple[Route, ...]]:
    """The routes that create a row of each kind: ``POST`` with a token and no id in the path, by the kind
    of the resource the path names (``POST /calls`` -> ``call``, ``POST /recordings/start`` -> ``recording``).

    A cross-tenant probe reaches a route only with another tenant's id of its kind: where the load has
    seen none, the probe has that tenant create one through the API's own route first, so every route
    that takes an id is probed, including kinds no action of the scenario creates.
    """
    out: dict[str, list[Route]] = {}
    for route in all_routes:
        if route.method == "POST" and route.token and not route.id_params:
            kind = _resource_kind(route.path)
            if kind:
                out.setdefault(kind, []).append(route)
    return {kind: tuple(found) for kind, found in out.items()}


def body_id_fields(doc: Mapping[str, Any], route: Route) -> tuple[tuple[str, str], ...]:
    """The ``(property, kind)`` pairs of the ids a write's JSON body names at its top level (required or not):
    ``appointment_id`` of a session start or a call, ``rep_id`` of an assignment.

    Each is a door to another tenant's row as surely as a path parameter (plan D2): the cross-tenant
    probe puts another tenant's id there, and a missing one in its control.
    """
    if not route.write or not route.token or route.body_schema is None:
        return ()
    schema = _resolve(doc, route.body_schema)
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    return tuple((name, kind_of(name)) for name in props or ()
                 if name.endswith("_id") and name not in _NOT_LEARNT)


def foreign_for_body(pools: Mapping[str, Sequence[str]], field: str, body: Any, company: str) -> list[str]:
    """The other tenant's ids a probe may put in a body's ``field``: those of the kind another field of the body
    names (``scope: company`` of a deletion request: the other tenant's company id; ``scope: appointment``: its
    appointments), else those of the field's own kind, else every id of every kind and its company's.

    A check that the id names a row of the right kind, without the tenant (a company deletion that looked the
    company up and never compared it with the caller's), shows only with an id of that kind: an appointment id
    under ``scope: company`` is refused by the lookup alone, and passes such an app. The sibling comes first:
    the load learns ``target_id`` from deletion answers as a kind of its own (appointment ids, mostly), which
    hid the company (2026-12-05).
    """
    named = [value for name, value in (body or {}).items() if name != field and isinstance(value, str)
             and (value == "company" or pools.get(value))] if isinstance(body, dict) else []
    if named:
        return [company] if named[0] == "company" else list(pools[named[0]])
    kind = kind_of(field)
    own = pools.get(kind) or pools.get(kind.rsplit("_", 1)[-1])
    if own:
        return list(own)
    return [ident for ids in pools.values() for ident in ids] + [company]


def vary_enums(doc: Mapping[str, Any], route: Route, body: Any, rng: random.Random) -> Any:
    """``body`` with each top-level property the schema enumerates set to one of its values at random.

    :func:`sample_body` takes an enumeration's first value, so a probe of a body whose ``scope`` says what its
    ``target_id`` names would only ever name an appointment, and a company deletion's tenant check would never
    meet another tenant's company (a deletion request passed every probe without it, 2026-12-05).
    """
    if not isinstance(body, dict) or route.body_schema is None:
        return body
    schema = _resolve(doc, route.body_schema)
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    out = dict(body)
    for key in body:
        prop = _resolve(doc, (props or {}).get(key))
        if isinstance(prop, Mapping) and len(prop.get("enum") or ()) > 1:
            out[key] = rng.choice(list(prop["enum"]))
    return out


def query_id_fields(doc: Mapping[str, Any], route: Route) -> tuple[tuple[str, str], ...]:
    """The ``(query parameter, kind)`` pairs of a read's ids in its query string: ``assigned_rep_id`` of the
    appointment list (kind ``assigned_rep``; the probe finds the ``rep`` ids by the kind's last word).

    A filter by id is a door to another tenant's rows as surely as a path parameter (plan D2): a list
    filtered by another tenant's rep that drops its own tenant filter hands over that tenant's rows.
    """
    return tuple((str(p["name"]), kind_of(str(p["name"]))) for p in _read_query_params(doc, route)
                 if str(p.get("name", "")).endswith("_id") and p.get("name") not in _NOT_LEARNT)


def _read_query_params(doc: Mapping[str, Any], route: Route) -> list[Mapping[str, Any]]:
    """The query parameters of a read that needs a token (path-level and operation-level), resolved."""
    if route.write or not route.token:
        return []
    item = (doc.get("paths") or {}).get(route.path) or {}
    operation = item.get(route.method.lower()) if isinstance(item, Mapping) else None
    if not isinstance(operation, Mapping):
        return []
    params = [_resolve(doc, p) for p in list(item.get("parameters") or ()) + list(operation.get("parameters") or ())]
    return [p for p in params if isinstance(p, Mapping) and p.get("in") == "query"]


#: A pattern that lists a parameter's values: ``^(dead|retried)$`` (FastAPI writes ``Query(pattern=...)`` so).
_ALTERNATIVES = re.compile(r"^\^?\(?([\w-]+(?:\|[\w-]+)+)\)?\$?$")


def _values(doc: Mapping[str, Any], schema: Any) -> tuple[str, ...]:
    """The values a query parameter's schema enumerates (``enum``, or a pattern of alternatives), else none."""
    schema = _resolve(doc, schema)
    if not isinstance(schema, Mapping):
        return ()
    for branch in list(schema.get("anyOf") or ()) + list(schema.get("oneOf") or ()):
        found = _values(doc, branch)
        if found:
            return found
    if isinstance(schema.get("enum"), list):
        return tuple(str(x) for x in schema["enum"] if x is not None)
    match = _ALTERNATIVES.match(str(schema.get("pattern") or ""))
    return tuple(match.group(1).split("|")) if match else ()


def query_filters(doc: Mapping[str, Any], route: Route) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The ``(query parameter, values)`` pairs of a read's enumerated filters: ``status`` of the dead-letter
    list (``dead``, ``retried``).

    A filter is a branch of the read's query, and a branch is where a tenant condition gets lost: a
    dead-letter list that rebuilt its statement for ``?status=`` without the tenant handed every tenant's
    letters to anyone who filtered, and tenant-probe passed it (no load filtered; 2026-12-03).
    """
    return tuple((str(p["name"]), values) for p in _read_query_params(doc, route)
                 if (values := _values(doc, p.get("schema"))))


def idempotent_routes(all_routes: Iterable[Route]) -> tuple[Route, ...]:
    """Writes that declare an ``Idempotency-Key`` header."""
    return tuple(r for r in all_routes if r.idempotency is not None and r.token)


def authz_routes(all_routes: Iterable[Route]) -> tuple[Route, ...]:
    """Operations that declare a security requirement."""
    return tuple(r for r in all_routes if r.token)


def authz_roles(route: Route) -> tuple[str, ...]:
    """Who an authorization probe of ``route`` may pretend to be, without side effects when the app is right.

    Unauthenticated callers everywhere (a 401 has no effect): no token, an expired one, a forged one, a
    ``lapsed`` one (served while live, expired since: ``stormproof.harness.load.tokens``); a rep only where the
    manager role is required (a 403 has no effect); a manager only on reads (its answers are ordinary traffic).
    """
    roles = ["none", "expired", "lapsed", "forged"]
    if "manager" in route.roles:
        roles.append("rep")
    if not route.write:
        roles.append("manager")
    return tuple(roles)


#: The order in which authorization turns take the callers: first the two whose refusals are promises of their
#: own (a rep on a manager route, D2.manager-routes-403; an expired token, D2.tokens-verified), so that a short
#: run's first two probes cover both.
_AUTHZ_ORDER = ("rep", "expired", "none", "forged", "manager", "lapsed")


def authz_turns(all_routes: Sequence[Route], offset: int = 0) -> list[tuple[Route, str]]:
    """Every (route, caller) pair of the authorization probes, in the order the turns take them.

    Diagonal, caller-major: turn ``j`` of round ``k`` is caller ``j`` on the ``k``-th route that caller may be
    probed on (shifted by ``offset``, which each load process draws, so that processes probe other routes).
    Route after route (each route's callers in a row) made the caller a run's few probes reached depend on
    where the turn began: a 10-second smoke run on the Docker backend sent no rep and no expired token at all,
    and ended "not exercised" (CI, 2026-12-04). Here any six consecutive turns take every caller.
    """
    per_role = [(role, [r for r in all_routes if role in authz_roles(r)]) for role in _AUTHZ_ORDER]
    per_role = [(role, rs) for role, rs in per_role if rs]
    turns: list[tuple[Route, str]] = []
    for k in range(max((len(rs) for _, rs in per_role), default=0)):
        for role, rs in per_role:
            if k < len(rs):
                turns.append((rs[(k + offset) % len(rs)], role))
    return turns


def fill_path(route: Route, ids: Mapping[str, str]) -> str:
    """The route's path with each path parameter replaced by ``ids[parameter]``."""
    return _PARAM.sub(lambda m: ids[m.group(1)], route.path)


def sample_body(doc: Mapping[str, Any], route: Route, own: Mapping[str, Sequence[str]], rng: random.Random,
                marker: str, *, known_ids: bool = False) -> Any:
    """A small request body valid for the schema: required properties only.

    ``<kind>_id`` properties take one of our own ids of that kind (so that a refusal is about the
    path's id, not the body's); an id whose name says no kind we hold takes the kind a sibling
    string names (``{"scope": "appointment", "target_id": ...}``); strings carry ``marker``;
    date-times are an hour apart, in order. With ``known_ids`` (a body meant to succeed, e.g. to
    create a row), an optional id property of a kind we hold none of is left out rather than made up.
    """
    if route.body_schema is None:
        return None
    clock = [0]
    return _sample(doc, route.body_schema, "", own, rng, marker, clock, 0, known_ids)


def _sample(doc: Mapping[str, Any], schema: Any, name: str, own: Mapping[str, Sequence[str]], rng: random.Random,
            marker: str, clock: list[int], depth: int, known_ids: bool = False) -> Any:
    schema = _resolve(doc, schema)
    if not isinstance(schema, Mapping) or depth > 6:
        return None
    for combo in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(combo) or () if _resolve(doc, o).get("type") != "null"]
        if options:
            return _sample(doc, options[0], name, own, rng, marker, clock, depth + 1, known_ids)
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        required = list(schema.get("required") or ())
        keys = required
        if not keys:  # a patch: nothing required, so change what can be seen (plain strings)
            keys = [key for key, prop in props.items() if _plain_string(doc, prop)]
        if known_ids:
            keys = [key for key in keys if key in required or not key.endswith("_id") or own.get(kind_of(key))]
        out = {key: _sample(doc, props.get(key, {}), key, own, rng, marker, clock, depth + 1, known_ids)
               for key in keys}
        for key in keys:  # an id of no kind we hold: the kind a sibling names, if it names one we hold
            if key.endswith("_id") and not own.get(kind_of(key)):
                named = next((val for other, val in out.items()
                              if other != key and isinstance(val, str) and own.get(val)), None)
                if named is not None:
                    out[key] = rng.choice(list(own[named]))
        return out
    if kind == "array":
        return []
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    fmt = schema.get("format")
    if name.endswith("_id") or fmt == "uuid":
        pool = own.get(kind_of(name)) if name else None
        return rng.choice(list(pool)) if pool else str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if fmt == "date-time":  # one day far ahead per body, fields an hour apart in order
        if clock[0] == 0:
            clock.append(rng.randrange(28))
        clock[0] += 1
        return f"2031-{1 + clock[1] % 12:02d}-{1 + clock[1]:02d}T{clock[0]:02d}:00:00Z"
    if fmt == "date":
        return "2031-01-01"
    if fmt == "email" or "email" in name:
        return f"{marker}@example.test"
    return marker[: schema["maxLength"]] if isinstance(schema.get("maxLength"), int) else marker


def _plain_string(doc: Mapping[str, Any], schema: Any) -> bool:
    schema = _resolve(doc, schema)
    if not isinstance(schema, Mapping):
        return False
    options = [_resolve(doc, o) for o in schema.get("anyOf") or ()] or [schema]
    return any(isinstance(o, Mapping) and o.get("type") == "string" and "format" not in o and "enum" not in o
               for o in options)


def learn(path: str, status: int, body: Any) -> list[tuple[str, str]]:
    """The (kind, id) pairs a 2xx answer to ``path`` (the template) names.

    ``<kind>_id`` fields are filed under their kind; the answer's own ``id``
    under the kind of the resource the path names: its last id parameter when
    the path ends with it, else the singular of the last plural segment
    (``/recordings/sessions/start`` -> ``session``).
    """
    if not 200 <= status < 300:
        return []
    if isinstance(body, Mapping) and isinstance(body.get("items"), list):
        body = body["items"]
    if isinstance(body, list):  # a list answer: each item is a row of the path's resource
        return [pair for item in body[:50] for pair in learn(path, status, item)]
    if not isinstance(body, Mapping):
        return []
    out = [(kind_of(key), value) for key, value in body.items()
           if key.endswith("_id") and key not in _NOT_LEARNT and isinstance(value, str)]
    own = body.get("id")
    if isinstance(own, str):
        kind = _resource_kind(path)
        if kind:
            out.append((kind, own))
    return out


def _resource_kind(path: str) -> str | None:
    segments = [s for s in path.strip("/").split("/") if s]
    if segments and _PARAM.fullmatch(segments[-1]):
        return kind_of(segments[-1][1:-1], path)
    for segment in reversed(segments):
        if _PARAM.fullmatch(segment):
            return kind_of(segment[1:-1], path)
        if segment.endswith("s") and not segment.startswith("v"):
            return _singular(segment)
    return None


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """One request's identity for Idempotency-Key purposes: method, concrete path and payload."""
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")) if body is not None else ""
    return hashlib.sha256(f"{method} {path}\n{payload}".encode()).hexdigest()[:32]


#: Body fields that legitimately differ between two answers to the same question.
_VOLATILE = frozenset(("trace_id", "instance", "request_id", "timestamp"))


def masked_digest(raw: bytes, ids: Iterable[str]) -> str:
    """A digest of an answer's body with the asked-for ids and per-request fields masked.

    A foreign id and a missing id must answer alike "modulo the id and the
    trace": both are replaced by ``{id}`` and volatile fields are dropped.
    """
    text = raw.decode("utf-8", errors="replace")
    for value in ids:
        if value:
            text = text.replace(value, "{id}")
    try:
        body = json.loads(text)
    except ValueError:
        return hashlib.sha256(text.encode()).hexdigest()[:32]
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in _VOLATILE}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
