"""The probes derived from an OpenAPI document: the reference app's, and a small hand-made one."""

from __future__ import annotations

import copy
import json
import random
import re

import pytest

from stormproof.harness.load import probes as p

#: A backend that is not ours: a bare ``id`` parameter, a shared path parameter, a route-level key
#: header, roles in a 3.1 security requirement, an anonymous route and a $ref'd body.
HAND_MADE = {
    "openapi": "3.1.0",
    "security": [{"jwt": []}],
    "components": {
        "securitySchemes": {"jwt": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Visit": {"type": "object", "required": ["title", "owner_id", "starts_at", "ends_at"],
                              "properties": {"title": {"type": "string", "maxLength": 40},
                                             "owner_id": {"type": "string", "format": "uuid"},
                                             "starts_at": {"type": "string", "format": "date-time"},
                                             "ends_at": {"type": "string", "format": "date-time"},
                                             "note": {"type": "string"}}}},
        "parameters": {"Key": {"name": "Idempotency-Key", "in": "header", "required": True,
                               "schema": {"type": "string"}}},
    },
    "paths": {
        "/health": {"get": {"security": []}},
        "/visits": {
            "post": {"parameters": [{"$ref": "#/components/parameters/Key"}],
                     "requestBody": {"content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/Visit"}}}}},
            "get": {},
        },
        "/visits/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True}],
            "get": {},
            "delete": {"security": [{"jwt": ["admin", "manager"]}]},
        },
        "/visits/{id}/notes/{noteId}": {"put": {
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False}],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"text": {"type": "string"}}}}}}}},
        "/hooks/in": {"post": {"security": [{}, {"jwt": []}]}},
    },
}


def _by_name(doc: dict) -> dict[str, p.Route]:
    return {route.name: route for route in p.routes(doc)}


def test_hand_made_document() -> None:
    routes = _by_name(HAND_MADE)
    assert set(routes) == {"GET /health", "POST /visits", "GET /visits", "GET /visits/{id}", "DELETE /visits/{id}",
                           "PUT /visits/{id}/notes/{noteId}", "POST /hooks/in"}
    assert routes["GET /visits/{id}"].id_params == (("id", "visit"),)  # bare id: the segment before it
    assert routes["PUT /visits/{id}/notes/{noteId}"].id_params == (("id", "visit"), ("noteId", "note"))
    assert routes["POST /visits"].idempotency == "required"
    assert routes["PUT /visits/{id}/notes/{noteId}"].idempotency == "optional"
    assert routes["DELETE /visits/{id}"].roles == ("admin", "manager")
    assert not routes["GET /health"].token and not routes["POST /hooks/in"].token  # {} = anonymous allowed
    assert routes["GET /visits"].token  # the document-wide requirement
    cross = {r.name for r in p.cross_tenant_routes(routes.values())}
    assert cross == {"GET /visits/{id}", "DELETE /visits/{id}", "PUT /visits/{id}/notes/{noteId}"}
    assert {r.name for r in p.idempotent_routes(routes.values())} == {"POST /visits", "PUT /visits/{id}/notes/{noteId}"}
    # every read a user may send, lists and reads by id alike (sent for the tenant's own rows); not the open ones
    assert {r.name for r in p.own_reads(routes.values())} == {"GET /visits", "GET /visits/{id}"}
    assert p.authz_roles(routes["DELETE /visits/{id}"]) == ("none", "expired", "lapsed", "forged", "rep")
    assert p.authz_roles(routes["GET /visits"]) == ("none", "expired", "lapsed", "forged", "manager")


def test_sample_body_is_valid_and_uses_our_ids() -> None:
    routes = _by_name(HAND_MADE)
    body = p.sample_body(HAND_MADE, routes["POST /visits"], {"owner": ["o1"]}, random.Random(3), "sp-probe-c1")
    assert body["owner_id"] == "o1" and body["title"] == "sp-probe-c1"
    assert body["starts_at"] < body["ends_at"]  # date-times in order, so a window is valid
    assert "note" not in body  # required properties only
    patch = p.sample_body(HAND_MADE, routes["PUT /visits/{id}/notes/{noteId}"], {}, random.Random(3), "m")
    assert patch == {"text": "m"}  # nothing required: the visible strings change
    assert p.sample_body(HAND_MADE, routes["GET /visits"], {}, random.Random(3), "m") is None


def test_document_without_security_follows_the_contract() -> None:
    doc = {"paths": {"/api/v1/things/{thing_id}": {"get": {}}, "/healthz": {"get": {}}}}
    routes = _by_name(doc)
    assert routes["GET /api/v1/things/{thing_id}"].token and not routes["GET /healthz"].token


def test_learn_files_ids_under_their_kinds() -> None:
    assert p.learn("/api/v1/recordings/sessions/start", 201, {"id": "s1", "appointment_id": "a1",
                                                              "company_id": "c1"}) == [("appointment", "a1"),
                                                                                       ("session", "s1")]
    assert p.learn("/api/v1/recordings/start", 201, {"recording_id": "r1"}) == [("recording", "r1")]
    assert p.learn("/api/v1/calls/c9", 200, {"id": "c9"}) == [("call", "c9")]
    assert p.learn("/api/v1/dead-letters", 200, [{"id": "d1"}, {"id": "d2"}]) == [("dead_letter", "d1"),
                                                                                  ("dead_letter", "d2")]
    assert p.learn("/api/v1/calls", 404, {"id": "x"}) == []


def test_masked_digest_ignores_the_id_and_the_trace() -> None:
    a = json.dumps({"type": "not-found", "detail": "appointment a1 not found", "trace_id": "t1"}).encode()
    b = json.dumps({"type": "not-found", "detail": "appointment b2 not found", "trace_id": "t2"}).encode()
    c = json.dumps({"type": "not-found", "detail": "appointment of another tenant", "trace_id": "t2"}).encode()
    assert p.masked_digest(a, ["a1"]) == p.masked_digest(b, ["b2"])
    assert p.masked_digest(a, ["a1"]) != p.masked_digest(c, ["zz"])


@pytest.fixture(scope="module")
def reference_doc() -> dict:
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    mp.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    try:
        from stormproof.reference_app.main import create_app

        return create_app().openapi()
    finally:
        mp.undo()


def test_reference_document_covers_every_promise_route(reference_doc: dict) -> None:
    routes = _by_name(reference_doc)
    cross = {r.name for r in p.cross_tenant_routes(routes.values())}
    # every route that takes an id, every method: nothing listed by hand
    assert {"GET /api/v1/appointments/{appointment_id}", "PATCH /api/v1/appointments/{appointment_id}",
            "DELETE /api/v1/appointments/{appointment_id}", "POST /api/v1/appointments/{appointment_id}/assign",
            "POST /api/v1/recordings/sessions/{session_id}/stop", "POST /api/v1/recordings/{recording_id}/stop",
            "GET /api/v1/calls/{call_id}", "POST /api/v1/dead-letters/{dead_letter_id}/retry",
            "POST /api/v1/deletions/{deletion_id}/confirm"} <= cross
    assert all("{" in name for name in cross)
    keyed = {r.name: r.idempotency for r in p.idempotent_routes(routes.values())}
    # docs/API.md: required on the three P0 writes of plan B1, optional on the others
    assert keyed["POST /api/v1/recordings/sessions/start"] == "required"
    assert keyed["POST /api/v1/recordings/sessions/{session_id}/stop"] == "required"
    assert keyed["POST /api/v1/appointments/{appointment_id}/assign"] == "required"
    assert keyed["POST /api/v1/recordings/start"] == "optional"
    assert keyed["POST /api/v1/calls"] == "optional"
    assert not routes["POST /api/v1/shunya/webhook"].token and not routes["GET /metrics"].token
    assert routes["DELETE /api/v1/appointments/{appointment_id}"].roles == ("manager",)
    assert routes["POST /api/v1/recordings/sessions/start"].roles == ()
    assert {r.name for r in p.authz_routes(routes.values())} == {
        name for name in routes if name.split(" ", 1)[1].startswith("/api/v1/") and "webhook" not in name}
    for route in routes.values():  # a body we can send for every write that takes one
        body = p.sample_body(reference_doc, route, {"appointment": ["a1"], "rep": ["r1"]}, random.Random(1), "m")
        assert (body is None) == (route.body_schema is None)
    rep = p.sample_body(reference_doc, routes["POST /api/v1/reps"], {}, random.Random(1), "sp-probe-c1")
    assert rep == {"email": "sp-probe-c1@example.test", "name": "sp-probe-c1"}  # passes the email pattern
    assign = routes["POST /api/v1/appointments/{appointment_id}/assign"]
    assert p.sample_body(reference_doc, assign, {"rep": ["r1"]}, random.Random(1), "m") == {"rep_id": "r1"}
    assert p.fill_path(assign, {"appointment_id": "a9"}) == "/api/v1/appointments/a9/assign"


def test_every_kind_of_id_has_a_creator_or_a_seed(reference_doc: dict) -> None:
    """A probe reaches a route only with an id of its kind: every kind a cross-tenant route takes is created
    through the API's own route, except dead letters, which no route creates (the seed makes one per tenant)."""
    routes = p.routes(reference_doc)
    kinds = {kind for route in p.cross_tenant_routes(routes) for _, kind in route.id_params}
    made = p.creators(routes)
    assert kinds - set(made) == {"dead_letter"}
    assert [r.name for r in made["call"]] == ["POST /api/v1/calls"]
    assert [r.name for r in made["recording"]] == ["POST /api/v1/recordings/start"]
    assert [r.name for r in made["deletion"]] == ["POST /api/v1/deletions"]
    theirs = {"appointment": ["a1"], "rep": ["r1"]}
    # a body meant to create: an optional id of a kind we hold none of is left out, not made up
    call = p.sample_body(reference_doc, made["call"][0], theirs, random.Random(1), "m", known_ids=True)
    assert call == {"appointment_id": "a1"}
    # target_id names no kind: it takes the one its sibling scope names
    deletion = p.sample_body(reference_doc, made["deletion"][0], theirs, random.Random(1), "m", known_ids=True)
    assert deletion == {"scope": "appointment", "target_id": "a1"}


def test_ids_in_bodies_are_doors_too(reference_doc: dict) -> None:
    """Every write whose body names an id is probed with another tenant's id there (plan D2)."""
    fields = {route.name: p.body_id_fields(reference_doc, route) for route in p.routes(reference_doc)}
    assert fields["POST /api/v1/recordings/sessions/start"] == (("appointment_id", "appointment"),)
    assert fields["POST /api/v1/recordings/start"] == (("appointment_id", "appointment"),)
    assert ("appointment_id", "appointment") in fields["POST /api/v1/calls"]
    assert fields["POST /api/v1/appointments/{appointment_id}/assign"] == (("rep_id", "rep"),)
    assert fields["GET /api/v1/appointments/{appointment_id}"] == ()  # reads have no body
    assert fields["POST /api/v1/shunya/webhook"] == ()  # no token: not a tenant's door


def test_enumerated_filters_are_doors_too(reference_doc: dict) -> None:
    """Every read's enumerated query parameter is probed with each of its values (a filtered branch of a query
    can lose its tenant): the reference app's status filters, and an ``enum`` or a pattern of a document not ours."""
    found = {route.name: dict(p.query_filters(reference_doc, route)) for route in p.routes(reference_doc)}
    assert found["GET /api/v1/dead-letters"] == {"status": ("dead", "retried")}
    assert found["GET /api/v1/recordings/sessions"] == {"status": ("pending", "recording", "stopped", "failed")}
    assert not found["POST /api/v1/recordings/sessions/start"]  # writes are not filters
    doc = {"openapi": "3.1.0", "security": [{"jwt": []}],
           "components": {"securitySchemes": {"jwt": {"type": "http", "scheme": "bearer"}},
                          "schemas": {"State": {"type": "string", "enum": ["open", "closed"]}}},
           "paths": {"/visits": {"get": {"parameters": [
               {"name": "state", "in": "query", "schema": {"anyOf": [{"$ref": "#/components/schemas/State"},
                                                                     {"type": "null"}]}},
               {"name": "kind", "in": "query", "schema": {"type": "string", "pattern": "^(a|b-c)$"}},
               {"name": "q", "in": "query", "schema": {"type": "string", "pattern": "^[a-z]+$"}}]}}}}
    (route,) = p.routes(doc)
    assert dict(p.query_filters(doc, route)) == {"state": ("open", "closed"), "kind": ("a", "b-c")}


def test_the_contract_reserves_the_manager_routes_whatever_the_document_says(reference_doc: dict) -> None:
    """The reference app's document names exactly the contract's manager-only routes, so the contract adds
    nothing on a correct app; a document that lost a route's requirement (unassign opened to any role with its
    check) still gets a rep probe there, and a 403 expected."""
    routes = p.routes(reference_doc)
    declared = {(r.method, re.sub(r"\{[^}/]+\}", "{}", r.path)) for r in routes if "manager" in r.roles}
    assert declared == p.CONTRACT_MANAGER_ONLY
    opened = copy.deepcopy(reference_doc)
    unassign = opened["paths"]["/api/v1/appointments/{appointment_id}/unassign"]["post"]
    unassign["security"] = [{name: [] for requirement in unassign["security"] for name in requirement}]
    route = _by_name(opened)["POST /api/v1/appointments/{appointment_id}/unassign"]
    assert route.roles == ("manager",) and "rep" in p.authz_roles(route)


def test_the_contract_gives_the_idempotency_keys_whatever_the_document_says(reference_doc: dict) -> None:
    """The reference document declares exactly the contract's keys; a document that dropped a required key
    (session start made optional with its check) or the header altogether is still probed as the contract says."""
    routes = p.routes(reference_doc)
    declared = {(r.method, re.sub(r"\{[^}/]+\}", "{}", r.path)): r.idempotency for r in routes if r.idempotency}
    assert declared == p.CONTRACT_KEYS
    weakened = copy.deepcopy(reference_doc)
    start = weakened["paths"]["/api/v1/recordings/sessions/start"]["post"]
    for parameter in start["parameters"]:
        if parameter.get("name", "").lower() == "idempotency-key":
            parameter["required"] = False
    calls = weakened["paths"]["/api/v1/calls"]["post"]
    calls["parameters"] = [q for q in calls["parameters"] if q.get("name", "").lower() != "idempotency-key"]
    by_name = _by_name(weakened)
    assert by_name["POST /api/v1/recordings/sessions/start"].idempotency == "required"
    assert by_name["POST /api/v1/calls"].idempotency == "optional"


def test_every_api_route_but_the_webhook_needs_a_token_whatever_the_document_says(reference_doc: dict) -> None:
    open_doc = copy.deepcopy(reference_doc)
    open_doc["paths"]["/api/v1/reps/{rep_id}"]["get"]["security"] = []  # a route that lost its check
    by_name = _by_name(open_doc)
    assert by_name["GET /api/v1/reps/{rep_id}"].token
    assert not by_name["POST /api/v1/shunya/webhook"].token and not by_name["GET /metrics"].token
    assert {r.name for r in p.authz_routes(p.routes(reference_doc))} == {r.name for r in p.authz_routes(by_name.values())}


@pytest.mark.parametrize("offset", [0, 1, 7, 1234567])
def test_authz_turns_take_every_pair_once_and_every_caller_in_any_six_turns(reference_doc: dict,
                                                                              offset: int) -> None:
    routes = p.authz_routes(p.routes(reference_doc))
    turns = p.authz_turns(routes, offset)
    pairs = {(r.name, role) for r in routes for role in p.authz_roles(r)}
    assert sorted((r.name, role) for r, role in turns) == sorted(pairs)
    # The first two turns of a process are the callers with promises of their own (a short run has few).
    assert [role for _, role in turns[:2]] == ["rep", "expired"]
    roles = set(p.AUTHZ_ROLES)
    rounds = min(sum(1 for r in routes if role in p.authz_roles(r)) for role in roles)
    assert rounds >= 5 and len(roles) == 6
    for start in range(0, 6 * rounds - 5):  # while every caller still has routes left in the cycle
        assert {role for _, role in turns[start:start + 6]} == roles


def test_a_process_opens_with_every_rare_action_twice() -> None:
    from stormproof.harness.load.config import DEFAULT_WEIGHTS, opening_turns

    opening = opening_turns(DEFAULT_WEIGHTS)
    total = sum(DEFAULT_WEIGHTS.values())
    assert opening.count("probe.authz") == 2 and opening.count("consent.probe") == 2
    assert "session.start" not in opening and "lifecycle.delete" not in opening  # common, or off
    assert set(opening) == {a for a, w in DEFAULT_WEIGHTS.items() if 0 < w < 0.05 * total}
    assert opening_turns({"session.start": 1}) == () and opening_turns({}) == ()


def test_the_reference_document_names_exactly_the_contracts_routes(reference_doc: dict) -> None:
    """docs/API.md's table and the reference app agree, so the contract adds nothing to a correct app's document;
    the contract's bodies are sampled exactly as the reference schemas are."""
    routes = p.routes(reference_doc)
    assert {(r.method, r.path) for r in routes if r.path.startswith("/api/v1/")} == set(p.CONTRACT_ROUTES)
    assert p.routes(p.with_contract(reference_doc)) == routes
    bare = {r.name: r for r in p.routes(p.with_contract({}))}
    own = {"appointment": ["a1"], "rep": ["r1"], "session": ["s1"]}
    for route in routes:
        if route.path.startswith("/api/v1/"):
            contract = bare[route.name]
            assert (contract.id_params, contract.idempotency, contract.token, contract.roles) == (
                route.id_params, route.idempotency, route.token, route.roles), route.name
            assert (p.sample_body({}, contract, own, random.Random(3), "m")
                    == p.sample_body(reference_doc, route, own, random.Random(3), "m")), route.name


def test_a_route_the_document_leaves_out_is_still_probed(reference_doc: dict) -> None:
    """A stale or partial document (a route registered outside it) hides no door: the contract's route is
    probed across tenants, for its key and for its roles all the same; a backend serving no document at all is
    probed on the contract alone."""
    partial = copy.deepcopy(reference_doc)
    del partial["paths"]["/api/v1/calls/{call_id}"]
    del partial["paths"]["/api/v1/appointments/{appointment_id}/assign"]
    assert "GET /api/v1/calls/{call_id}" not in _by_name(partial)
    found = {r.name: r for r in p.routes(p.with_contract(partial))}
    cross = {r.name for r in p.cross_tenant_routes(found.values())}
    assert {"GET /api/v1/calls/{call_id}", "POST /api/v1/appointments/{appointment_id}/assign"} <= cross
    assign = found["POST /api/v1/appointments/{appointment_id}/assign"]
    assert assign.idempotency == "required" and assign.roles == ("manager",)
    assert "rep" in p.authz_roles(assign)
    assert p.sample_body(partial, assign, {"rep": ["r1"]}, random.Random(1), "m") == {"rep_id": "r1"}
    del partial["paths"]["/api/v1/recordings/sessions"]
    merged = p.with_contract(partial)
    sessions = next(r for r in p.routes(merged) if r.name == "GET /api/v1/recordings/sessions")
    assert p.query_id_fields(merged, sessions) == (("appointment_id", "appointment"),)
    assert dict(p.query_filters(merged, sessions)) == {"status": ("pending", "recording", "stopped", "failed")}
    renamed = copy.deepcopy(reference_doc)  # the document's own parameter names are kept
    renamed["paths"]["/api/v1/calls/{id}"] = renamed["paths"].pop("/api/v1/calls/{call_id}")
    del renamed["paths"]["/api/v1/calls/{id}"]["get"]
    names = [r.name for r in p.routes(p.with_contract(renamed)) if "/calls/" in r.name and "refresh" not in r.name]
    assert names == ["GET /api/v1/calls/{id}"]
    alone = p.routes(p.with_contract({}))
    assert {r.name for r in p.authz_routes(alone)} == {
        f"{method} {path}" for method, path in p.CONTRACT_ROUTES if "webhook" not in path}
    assert len(p.cross_tenant_routes(alone)) == len(p.cross_tenant_routes(p.routes(reference_doc)))


def test_a_body_id_of_no_kind_takes_the_kind_its_scope_names() -> None:
    """A deletion request's target_id names no kind; its scope does: under ``company`` the probe names the other
    tenant's company (an app that looked the company up but never compared it with the caller's passes any other
    id), under ``appointment`` one of its appointments; with no such field, any id of any kind or its company."""
    from stormproof.harness.load.probes import foreign_for_body as _foreign_for

    pools = {"appointment": ["a1", "a2"], "rep": ["r1"]}
    assert _foreign_for(pools, "target_id", {"scope": "company", "target_id": "x"}, "c9") == ["c9"]
    assert _foreign_for(pools, "target_id", {"scope": "appointment", "target_id": "x"}, "c9") == ["a1", "a2"]
    assert sorted(_foreign_for(pools, "target_id", {"target_id": "x"}, "c9")) == ["a1", "a2", "c9", "r1"]
    assert _foreign_for(pools, "rep_id", {"rep_id": "x"}, "c9") == ["r1"]
    # target_id learnt from deletion answers (appointments targeted) must not hide the company the scope names
    learnt = {**pools, "target": ["a1"]}
    assert _foreign_for(learnt, "target_id", {"scope": "company", "target_id": "x"}, "c9") == ["c9"]


def test_a_probe_body_varies_what_the_schema_enumerates() -> None:
    """sample_body takes an enumeration's first value; a probe takes each of them in turn, so a deletion probe
    names a company as often as an appointment."""
    import random

    from stormproof.harness.load.probes import Route, vary_enums

    doc = {"components": {"schemas": {"D": {"type": "object", "properties": {
        "scope": {"type": "string", "enum": ["appointment", "company"]}, "target_id": {"type": "string"},
        "kind": {"type": "string", "enum": ["only"]}}}}}}
    route = Route("POST", "/api/v1/deletions", (), None, True, ("manager",), {"$ref": "#/components/schemas/D"})
    rng = random.Random(3)
    seen = {vary_enums(doc, route, {"scope": "appointment", "target_id": "t", "kind": "only"}, rng)["scope"]
            for _ in range(40)}
    assert seen == {"appointment", "company"}
    assert vary_enums(doc, route, {"target_id": "t", "kind": "only"}, rng) == {"target_id": "t", "kind": "only"}
