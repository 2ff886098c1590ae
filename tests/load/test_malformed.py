"""Malformed bodies derived from a document's schemas: the reference app's, and a small hand-made one."""

from __future__ import annotations

import random

import pytest

from stormproof.harness.load import malformed as m
from stormproof.harness.load import probes as p
from tests.load.test_probes import HAND_MADE, reference_doc  # noqa: F401  (a fixture)


def _route(doc: dict, name: str) -> p.Route:
    return next(route for route in p.routes(doc) if route.name == name)


def test_cases_follow_the_schema_of_a_foreign_document() -> None:
    visit = _route(HAND_MADE, "POST /visits")
    cases = m.malformed_cases(HAND_MADE, visit)
    assert [f for c, f in cases if c == "missing"] == ["title", "owner_id", "starts_at", "ends_at"]
    assert {f for c, f in cases if c == "nul"} == {"title", "note"}  # free text only: not a uuid or a date-time
    assert [f for c, f in cases if c == "too-long"] == ["title"]
    assert {f for c, f in cases if c == "naive-datetime"} == {"starts_at", "ends_at"}
    assert ("inverted-window", "starts_at,ends_at") in cases
    assert not [c for c, _ in cases if c in ("unknown-field", "out-of-range", "not-in-enum")]  # nothing declares it
    assert cases[-1] == ("not-object", "")
    assert m.malformed_cases(HAND_MADE, _route(HAND_MADE, "GET /visits")) == ()  # no body, nothing to break


def test_each_malformed_body_breaks_only_its_field() -> None:
    visit = _route(HAND_MADE, "POST /visits")
    body = p.sample_body(HAND_MADE, visit, {"owner": ["o1"]}, random.Random(3), "sp-probe-c1")
    for case, field in m.malformed_cases(HAND_MADE, visit):
        bad = m.malform(HAND_MADE, visit, body, case, field)
        assert bad != body, (case, field)
        if case == "not-object":
            assert bad == [body]
            continue
        changed = {k for k in set(bad) | set(body) if bad.get(k) != body.get(k)}
        if case == "inverted-window":
            assert changed == {"starts_at", "ends_at"} and bad["ends_at"] < bad["starts_at"]
        else:
            assert changed == {field}, (case, field, bad)
    assert "\x00" in m.malform(HAND_MADE, visit, body, "nul", "title")["title"]
    assert len(m.malform(HAND_MADE, visit, body, "too-long", "title")["title"]) == 41
    naive = m.malform(HAND_MADE, visit, body, "naive-datetime", "starts_at")["starts_at"]
    assert naive.endswith(":00") and not naive.endswith("Z")
    with pytest.raises(ValueError, match="unknown malformed case"):
        m.malform(HAND_MADE, visit, body, "sideways", "title")


def test_every_write_of_the_reference_app_with_a_body_is_probed(reference_doc: dict) -> None:  # noqa: F811
    doc = p.with_contract(reference_doc)
    turns = m.malformed_turns(doc, p.routes(doc))
    routes = {route.name for route, _ in turns}
    assert routes == {r.name for r in p.routes(doc) if r.write and r.body_schema is not None
                      and m.malformed_cases(doc, r)}
    assert {"POST /api/v1/appointments", "PUT /api/v1/retention-policy", "POST /api/v1/deletions",
            "POST /api/v1/recordings/sessions/start", "POST /api/v1/appointments/{appointment_id}/consents"} <= routes
    cases = {(route.name, case, field) for route, (case, field) in turns}
    assert ("PUT /api/v1/retention-policy", "out-of-range", "call_days") in cases  # minimum 1: 0 days
    assert ("POST /api/v1/deletions", "not-in-enum", "scope") in cases
    assert ("POST /api/v1/appointments", "inverted-window", "starts_at,ends_at") in cases
    assert all(("unknown-field" in {c for r, (c, _) in turns if r.name == name}) for name in routes)
    own = {"appointment": ["a1"], "rep": ["r1"]}
    retention = _route(doc, "PUT /api/v1/retention-policy")
    body = p.sample_body(doc, retention, own, random.Random(1), "m", known_ids=True)
    assert m.malform(doc, retention, body, "out-of-range", "call_days")["call_days"] == 0
    assert m.malform(doc, retention, body, "wrong-type", "call_days")["call_days"] == "sp-not-integer"
