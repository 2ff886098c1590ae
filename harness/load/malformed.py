"""Request bodies the API's own document refuses, derived from it: the malformed-body probes.

The load sends well-formed bodies only, so an app whose validation is missing
(a NUL reaching PostgreSQL, a date-time without its offset compared with one
that has it, an appointment that ends before it starts, a retention of zero
days) passed every scenario: nothing sent what the validation is there for
(a source-mutation sweep, 2026-12-05: removing any of the reference app's body
validators was caught by no scenario). Here each write's body schema names
the ways to break it, so every write route of the document, including routes
added later, is probed in each way its schema allows:

- ``missing``: a required property left out;
- ``wrong-type``: a property given a value of another JSON type (an object
  where a string is declared, a string where a number is);
- ``nul``: a NUL (U+0000) inside a free-text string (JSON carries it;
  PostgreSQL's text cannot);
- ``too-long``: a string one character over its ``maxLength``;
- ``out-of-range``: a number one past its ``minimum`` or ``maximum``;
- ``not-in-enum``: a value its ``enum`` does not list;
- ``naive-datetime``: a ``date-time`` without its offset (RFC 3339 requires one);
- ``inverted-window``: a pair of date-times named as a window's start and end
  (``starts_at``/``ends_at``, ``start``/``end``...), the end before the start;
- ``unknown-field``: a property the schema does not list, where it declares
  ``additionalProperties: false``;
- ``not-object``: a JSON array where the body is an object.

The promise (row E5.malformed-refused, checker input-validated): each is
refused with a 4xx before anything is written; never a 2xx (the write ran on
a body the contract refuses), never a 5xx (the app crashed on it).

Pure functions of the document, unit-tested without a server; the load turns
through every (route, case, field) in order, as it does for the other probes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .probes import Route, _resolve

__all__ = ["CASES", "Malformed", "malform", "malformed_turns", "malformed_cases"]

#: Every way of breaking a body this module knows, in the order a route's cases are listed.
CASES = ("missing", "wrong-type", "nul", "too-long", "out-of-range", "not-in-enum", "naive-datetime",
         "inverted-window", "unknown-field", "not-object")

#: (case, field): one malformed body of a route. ``field`` is the property broken ("" for the whole body;
#: "start,end" for an inverted window).
Malformed = tuple[str, str]

#: A property no schema lists (``unknown-field``).
UNKNOWN_FIELD = "sp_unknown_field"
#: The longest ``maxLength`` a ``too-long`` probe fills (a larger limit is not worth a megabyte per request).
_MAX_FILL = 100_000
_START = re.compile(r"(^|_)(start|starts|begin|begins|from)(_|$)")
_END = re.compile(r"(^|_)(end|ends|until|to)(_|$)")


def _options(doc: Mapping[str, Any], schema: Any) -> list[Mapping[str, Any]]:
    """The non-null alternatives of ``schema`` (an ``anyOf``/``oneOf`` of a type and null is the type)."""
    schema = _resolve(doc, schema)
    if not isinstance(schema, Mapping):
        return []
    for combo in ("anyOf", "oneOf"):
        if schema.get(combo):
            found = [_resolve(doc, o) for o in schema[combo]]
            return [o for o in found if isinstance(o, Mapping) and o.get("type") != "null"]
    return [schema]


def _object_schema(doc: Mapping[str, Any], route: Route) -> Mapping[str, Any] | None:
    schema = _resolve(doc, route.body_schema) if route.body_schema is not None else None
    if isinstance(schema, Mapping) and (schema.get("type") == "object" or "properties" in schema):
        return schema
    return None


def _single(doc: Mapping[str, Any], prop: Any) -> Mapping[str, Any] | None:
    """The one alternative of a property, or None when it has several (a union is not judged here)."""
    options = _options(doc, prop)
    return options[0] if len(options) == 1 else None


def _window(names: Iterable[str], formats: Mapping[str, Any]) -> tuple[str, str] | None:
    times = [n for n in names if formats.get(n) == "date-time"]
    start = next((n for n in times if _START.search(n)), None)
    end = next((n for n in times if n != start and _END.search(n)), None)
    return (start, end) if start and end else None


def malformed_cases(doc: Mapping[str, Any], route: Route) -> tuple[Malformed, ...]:
    """Every (case, field) the route's JSON object body schema refuses; () for a route without one."""
    schema = _object_schema(doc, route)
    if schema is None:
        return ()
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = [name for name in schema.get("required") or () if name in props]
    out: list[Malformed] = [("missing", name) for name in required]
    formats: dict[str, Any] = {}
    for name, prop in props.items():
        one = _single(doc, prop)
        if one is None:
            continue
        kind, fmt = one.get("type"), one.get("format")
        formats[name] = fmt
        out.append(("wrong-type", name))
        if kind == "string" and fmt is None and "enum" not in one and "pattern" not in one:
            out.append(("nul", name))
        if kind == "string" and isinstance(one.get("maxLength"), int) and one["maxLength"] < _MAX_FILL:
            out.append(("too-long", name))
        if kind in ("integer", "number") and ("minimum" in one or "maximum" in one):
            out.append(("out-of-range", name))
        if one.get("enum"):
            out.append(("not-in-enum", name))
        if kind == "string" and fmt == "date-time":
            out.append(("naive-datetime", name))
    window = _window(props, formats)
    if window is not None:
        out.append(("inverted-window", ",".join(window)))
    if schema.get("additionalProperties") is False:
        out.append(("unknown-field", UNKNOWN_FIELD))
    out.append(("not-object", ""))
    return tuple(out)


def malformed_turns(doc: Mapping[str, Any], all_routes: Iterable[Route]) -> list[tuple[Route, Malformed]]:
    """Every (route, (case, field)) of the document's routes with a JSON object body, route by route."""
    return [(route, case) for route in all_routes for case in malformed_cases(doc, route)]


def _wrong_type(one: Mapping[str, Any]) -> Any:
    kind = one.get("type")
    if kind in ("integer", "number", "boolean"):
        return "sp-not-" + str(kind)  # no lax parser reads this as a number or a boolean
    if kind == "array":
        return {"sp": "not-an-array"}
    if kind == "object":
        return ["sp-not-an-object"]
    return {"sp": "not-a-string"}  # a string (or no type): an object is never coerced to text


def malform(doc: Mapping[str, Any], route: Route, body: Any, case: str, field: str) -> Any:
    """``body`` (valid for the route, from ``sample_body``) broken as ``case`` says, on ``field``.

    The body's other properties stay valid, so the refusal can only be about the broken one.
    """
    if case == "not-object":
        return [body]
    out = dict(body) if isinstance(body, Mapping) else {}
    schema = _object_schema(doc, route) or {}
    props: Mapping[str, Any] = schema.get("properties") or {}
    one = _single(doc, props.get(field, {})) or {}
    if case == "missing":
        out.pop(field, None)
    elif case == "wrong-type":
        out[field] = _wrong_type(one)
    elif case == "nul":
        out[field] = "sp\x00nul"
    elif case == "too-long":
        out[field] = "x" * (int(one["maxLength"]) + 1)
    elif case == "out-of-range":
        if "minimum" in one:
            out[field] = _number(one, float(one["minimum"]) - 1)
        else:
            out[field] = _number(one, float(one["maximum"]) + 1)
    elif case == "not-in-enum":
        out[field] = "sp-not-a-choice"
    elif case == "naive-datetime":
        value = str(out.get(field) or "2031-01-01T10:00:00Z")
        out[field] = re.sub(r"(Z|[+-]\d\d:?\d\d)$", "", value)
    elif case == "inverted-window":
        start, end = field.split(",")
        out[start], out[end] = "2031-01-01T11:00:00Z", "2031-01-01T10:00:00Z"
    elif case == "unknown-field":
        out[UNKNOWN_FIELD] = "sp-unknown"
    else:
        raise ValueError(f"unknown malformed case {case!r}; known: {', '.join(CASES)}")
    return out


def _number(one: Mapping[str, Any], value: float) -> int | float:
    return int(value) if one.get("type") == "integer" else value
