"""The toxics of one proxy: two ordered chains (upstream, downstream).

Chains are immutable tuples replaced on every change and pushed to the live
links of that direction, so a link reads its chain with one attribute access
and toxics added or removed take effect on open connections immediately.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.faults import errors
from harness.faults.toxics import AttributeError_, Toxic, lookup

if TYPE_CHECKING:
    from harness.faults.link import Link

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

    __slots__ = ("name", "type", "stream", "toxicity", "toxic", "retired", "_waiters")

    def __init__(self, name: str, type_: str, stream: str, toxicity: float, toxic: Toxic) -> None:
        self.name = name
        self.type = type_
        self.stream = stream
        self.toxicity = toxicity
        self.toxic = toxic
        self.retired = False
        self._waiters: set[asyncio.Future[bool]] = set()

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's ToxicWrapper JSON (attributes first, like Go's field order)."""
        toxicity: float | int = self.toxicity
        if float(toxicity).is_integer():
            toxicity = int(toxicity)  # Go marshals float32(1) as 1
        return {
            "attributes": self.toxic.attributes(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": toxicity,
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
    if not isinstance(value, dict):
        raise errors.bad_request("expected a JSON object")
    return value


def _parse_toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.bad_request(f"toxicity must be a number, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise errors.bad_request(f"toxicity must be between 0 and 1, got {value}")
    return float(value)


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
        data = _parse_object(body)
        stream = data.get("stream", DOWNSTREAM)
        if not isinstance(stream, str) or stream.lower() not in DIRECTIONS:
            raise errors.INVALID_STREAM
        stream = stream.lower()
        type_ = data.get("type", "")
        name = data.get("name") or f"{type_}_{stream}"
        if not isinstance(type_, str) or not isinstance(name, str):
            raise errors.bad_request("name and type must be strings")
        cls = lookup(type_)
        if cls is None:
            raise errors.INVALID_TOXIC_TYPE
        if self._find(name) is not None:
            raise errors.TOXIC_ALREADY_EXISTS
        toxicity = _parse_toxicity(data.get("toxicity", 1.0))
        toxic = self._build(cls, data.get("attributes") or {}, None)
        entry = ToxicEntry(name, type_, stream, toxicity, toxic)
        self._install(stream, self._chains[stream] + (entry,))
        return entry

    def update_json(self, name: str, body: bytes) -> ToxicEntry:
        old = self._find(name)
        if old is None:
            raise errors.TOXIC_NOT_FOUND
        data = _parse_object(body)
        toxicity = _parse_toxicity(data.get("toxicity", old.toxicity))
        toxic = self._build(type(old.toxic), data.get("attributes") or {}, old.toxic)
        new = ToxicEntry(old.name, old.type, old.stream, toxicity, toxic)
        chain = tuple(new if e is old else e for e in self._chains[old.stream])
        self._install(old.stream, chain)
        old.retire()
        return new

    def remove(self, name: str) -> None:
        entry = self._find(name)
        if entry is None:
            raise errors.TOXIC_NOT_FOUND
        self._install(entry.stream, tuple(e for e in self._chains[entry.stream] if e is not entry))
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
        if not isinstance(attributes, Mapping):
            raise errors.bad_request("attributes must be a JSON object")
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
