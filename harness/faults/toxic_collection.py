"""The toxics of one proxy: two ordered chains (upstream, downstream).

Chains are immutable tuples replaced on every change and pushed to the live
links of that direction, so a link reads its chain with one attribute access
and toxics added or removed take effect on open connections immediately.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stormproof.harness.faults import errors
from stormproof.harness.faults.toxics import AttributeError_, Toxic, lookup

if TYPE_CHECKING:
    from stormproof.harness.faults.link import Link

__all__ = ["UPSTREAM", "DOWNSTREAM", "DIRECTIONS", "ToxicEntry", "ToxicCollection"]

UPSTREAM = "upstream"
DOWNSTREAM = "downstream"
#: Toxiproxy's stream.Direction order (upstream = 0), used for listing.
DIRECTIONS = (UPSTREAM, DOWNSTREAM)


class ToxicEntry:
    """A toxic as installed on a proxy: wire metadata plus the toxic itself.

    Entries are never mutated in place: an update installs a new entry and
    *retires* the old one, which wakes any connection sleeping inside it.
    """

    __slots__ = ("name", "type", "stream", "direction", "toxicity", "toxic", "retired", "_waiters")

    def __init__(
        self, name: str, type_: str, stream: str, toxicity: float, toxic: Toxic, direction: str | None = None
    ) -> None:
        self.name = name
        self.type = type_
        #: The stream as the client spelled it (upstream echoes "Upstream" back as given) ...
        self.stream = stream
        #: ... and the chain it runs on, "upstream" or "downstream".
        self.direction = direction or stream.lower()
        self.toxicity = toxicity
        self.toxic = toxic
        self.retired = False
        self._waiters: set[asyncio.Future[bool]] = set()

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's ToxicWrapper JSON (attributes first, like Go's field order)."""
        return {
            "attributes": self.toxic.attributes(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": _float32_json(self.toxicity),
        }

    def add_waiter(self, fut: asyncio.Future[bool]) -> None:
        """Register a sleeper to be woken (with False) on retirement."""
        self._waiters.add(fut)

    def discard_waiter(self, fut: asyncio.Future[bool]) -> None:
        self._waiters.discard(fut)

    def retire(self) -> None:
        """Mark removed/replaced and wake everything sleeping in this toxic."""
        self.retired = True
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(False)
        self._waiters.clear()


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(str(exc)) from None
    if value is None:
        return {}  # Go decodes a JSON null into the defaults
    if not isinstance(value, dict):
        kind = "array" if isinstance(value, list) else type(value).__name__
        raise errors.bad_request(f"json: cannot unmarshal {kind} into Go value of type toxics.ToxicWrapper")
    return value


#: The ToxicWrapper fields a request may set, with their Go types (for error messages).
_WRAPPER_FIELDS = {"name": "string", "type": "string", "stream": "string", "toxicity": "float32",
                   "attributes": "object"}
_FLOAT32_MAX = 3.4028234663852886e38


def _wrapper_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The request's wrapper fields as Go's decoder sees them: keys matched
    case-insensitively (an exact match first), later keys winning, ``null``
    leaving the default, and a value of the wrong JSON type refused."""
    fields: dict[str, Any] = {}
    for key, value in data.items():
        name = key if key in _WRAPPER_FIELDS else str(key).lower()
        go_type = _WRAPPER_FIELDS.get(name)
        if go_type is None or value is None:
            continue
        if go_type == "string" and not isinstance(value, str):
            raise _type_error(value, f"ToxicWrapper.{name}", "string")
        if go_type == "float32":
            value = _parse_toxicity(value)
        fields[name] = value
    return fields


def _type_error(value: Any, where: str, go_type: str) -> errors.ApiError:
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, (int, float)):
        kind = f"number {value}"
    else:
        kind = {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)
    return errors.bad_request(f"json: cannot unmarshal {kind} into Go struct field {where} of type {go_type}")


def _parse_toxicity(value: Any) -> float:
    """Any JSON number that fits a float32, as upstream: a toxicity above 1 acts as 1
    and one at or below 0 as never, but neither is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > _FLOAT32_MAX:
        raise _type_error(value, "ToxicWrapper.toxicity", "float32")
    return struct.unpack("f", struct.pack("f", float(value)))[0]


def _float32_json(value: float) -> float | int:
    """The number Go's encoder writes for a float32: its shortest round-tripping
    decimal (0.1, not 0.10000000149011612), integers without a fraction."""
    if float(value).is_integer() and abs(value) < 1e21:
        return int(value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
            return float(text)
    return value


class ToxicCollection:
    """Add/update/remove toxics and keep every live link's chain current."""

    def __init__(self) -> None:
        self._chains: dict[str, tuple[ToxicEntry, ...]] = {d: () for d in DIRECTIONS}
        self._links: dict[str, set[Link]] = {d: set() for d in DIRECTIONS}

    # -- queries -------------------------------------------------------------
    def chain(self, direction: str) -> tuple[ToxicEntry, ...]:
        return self._chains[direction]

    def entries(self) -> list[ToxicEntry]:
        """All toxics, upstream chain first, each in insertion order."""
        return [e for d in DIRECTIONS for e in self._chains[d]]

    def get(self, name: str) -> ToxicEntry:
        for entry in self.entries():
            if entry.name == name:
                return entry
        raise errors.TOXIC_NOT_FOUND

    def _find(self, name: str) -> ToxicEntry | None:
        return next((e for e in self.entries() if e.name == name), None)

    # -- mutations (validation order follows Toxiproxy's AddToxicJson) --------
    def add_json(self, body: bytes) -> ToxicEntry:
        # The checks, and their order, follow upstream's AddToxicJson: the JSON types of the
        # wrapper first, then the stream, the default name, the type, a duplicate name, and
        # last the attributes (decoded once the type is known).
        data = _parse_object(body)
        fields = _wrapper_fields(data)
        attributes = fields.get("attributes", {})
        if not isinstance(attributes, Mapping):  # decoded into the noop toxic at first
            raise _type_error(attributes, "ToxicWrapper.attributes", "toxics.NoopToxic")
        stream = fields.get("stream", DOWNSTREAM)
        if stream.lower() not in DIRECTIONS:
            raise errors.INVALID_STREAM
        type_ = fields.get("type", "")
        name = fields.get("name") or f"{type_}_{stream}"
        cls = lookup(type_)
        if cls is None:
            raise errors.INVALID_TOXIC_TYPE
        if self._find(name) is not None:
            raise errors.TOXIC_ALREADY_EXISTS
        toxicity = fields.get("toxicity", 1.0)
        toxic = self._build(cls, attributes, None)
        entry = ToxicEntry(name, type_, stream, toxicity, toxic)
        self._install(entry.direction, self._chains[entry.direction] + (entry,))
        return entry

    def update_json(self, name: str, body: bytes) -> ToxicEntry:
        """Upstream's UpdateToxicJson: only ``attributes`` (merged into the current
        ones) and ``toxicity`` change; name, type and stream in the body are ignored."""
        old = self._find(name)
        if old is None:
            raise errors.TOXIC_NOT_FOUND
        data = _parse_object(body)
        fields = _wrapper_fields({k: v for k, v in data.items() if str(k).lower() in ("attributes", "toxicity")})
        toxicity = fields.get("toxicity", old.toxicity)
        toxic = self._build(type(old.toxic), fields.get("attributes", {}), old.toxic)
        new = ToxicEntry(old.name, old.type, old.stream, toxicity, toxic, old.direction)
        chain = tuple(new if e is old else e for e in self._chains[old.direction])
        self._install(old.direction, chain)
        old.retire()
        return new

    def remove(self, name: str) -> None:
        entry = self._find(name)
        if entry is None:
            raise errors.TOXIC_NOT_FOUND
        self._install(entry.direction, tuple(e for e in self._chains[entry.direction] if e is not entry))
        entry.retire()

    def reset(self) -> None:
        """Remove every toxic (POST /reset)."""
        for direction in DIRECTIONS:
            old = self._chains[direction]
            if old:
                self._install(direction, ())
                for entry in old:
                    entry.retire()

    @staticmethod
    def _build(cls: type[Toxic], attributes: Any, base: Toxic | None) -> Toxic:
        try:
            return cls.from_attributes(attributes, base)
        except AttributeError_ as exc:
            raise errors.bad_request(str(exc)) from None

    # -- links ---------------------------------------------------------------
    def attach(self, link: Link) -> None:
        self._links[link.direction].add(link)

    def detach(self, link: Link) -> None:
        self._links[link.direction].discard(link)

    def _install(self, direction: str, chain: tuple[ToxicEntry, ...]) -> None:
        self._chains[direction] = chain
        for link in list(self._links[direction]):
            link.set_chain(chain)
