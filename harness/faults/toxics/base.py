"""The contract every toxic implements, and the per-connection context it gets.

A toxic is a small frozen dataclass whose fields are its wire attributes
(exactly the JSON keys Toxiproxy uses).  The proxy runs one chain of toxics per
direction of every connection; a toxic sees each chunk once, through
``pipe``, and hands zero or more chunks on with ``emit``.  Keeping the
attributes immutable lets an update swap a whole toxic object atomically while
connections keep their per-toxic state (which lives in the context, not here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

__all__ = ["Chunk", "Emit", "Toxic", "ToxicContext", "AttributeError_"]


@dataclass(slots=True)
class Chunk:
    """Bytes read from one socket, stamped with the loop time they arrived.

    The timestamp lets delaying toxics (latency) pipeline: a chunk that waited
    in the queue already "served" part of its delay.
    """

    data: bytes
    timestamp: float


Emit = Callable[[Chunk], Awaitable[None]]


class AttributeError_(ValueError):
    """A toxic attribute has the wrong type or an impossible value."""


class ToxicContext(Protocol):
    """What a toxic may do to the one connection direction it is running on."""

    @property
    def state(self) -> Any:
        """Per-connection state from ``Toxic.new_state`` (kept across updates)."""

    def now(self) -> float:
        """Loop time in seconds (same clock as ``Chunk.timestamp``)."""

    async def sleep(self, seconds: float) -> bool:
        """Sleep; return False early if this toxic was removed or updated."""

    async def wait_retired(self) -> None:
        """Block until this toxic is removed or updated."""

    def close_connection(self) -> None:
        """Close both sockets of the connection gracefully (FIN), after flushing."""

    def reset_connection(self) -> None:
        """Abort the destination socket with RST (SO_LINGER 0), close the other."""


@dataclass(frozen=True, slots=True)
class Toxic:
    """Base class: subclasses declare ``type_name`` and attribute fields.

    Subclasses register themselves with ``stormproof.harness.faults.toxics.registry.register``
    and live in their own module; nothing else needs to change to add one.
    """

    type_name: ClassVar[str] = ""
    #: True when ``run`` must be started per connection (timers, not data driven).
    has_background: ClassVar[bool] = False

    # -- wire format ---------------------------------------------------------
    #: The Go struct upstream decodes these attributes into (named in errors).
    go_struct: ClassVar[str] = ""
    #: Go type of the integer attributes: ``int64`` for most toxics, ``int`` for the slicer.
    go_int: ClassVar[str] = "int64"

    @classmethod
    def from_attributes(
        cls, attributes: Mapping[str, Any], base: "Toxic | None" = None
    ) -> "Toxic":
        """Build from JSON attributes exactly as upstream's ``encoding/json`` would.

        Upstream Toxiproxy validates nothing beyond the JSON types: any integer
        (negative included) is accepted for an integer attribute, ``null`` leaves
        the field as it was, unknown keys are ignored and key names match
        case-insensitively. ``base`` supplies the values of missing keys
        (partial update semantics); without it, the zero values are the defaults.
        """
        if not isinstance(attributes, Mapping):
            raise AttributeError_(
                f"json: cannot unmarshal {_json_kind(attributes)} into Go struct field "
                f".attributes of type toxics.{cls._go_struct_name()}"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        folded = {name.lower(): name for name in fields}
        values: dict[str, Any] = {}
        if base is not None:
            values.update({name: getattr(base, name) for name in fields})
        for key, value in attributes.items():  # in document order: the last match wins, as in Go
            name = key if key in fields else folded.get(str(key).lower())
            if name is None or value is None:
                continue
            values[name] = cls._decode(name, fields[name].type, value)
        toxic = cls(**values)
        toxic.validate()
        return toxic

    @classmethod
    def _go_struct_name(cls) -> str:
        return cls.go_struct or cls.__name__

    @classmethod
    def _decode(cls, name: str, annotation: Any, value: Any) -> Any:
        kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        go_type = cls.go_int if kind == "int" else ("float32" if kind == "float" else kind)
        if kind == "int" and _is_int64(value):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind not in ("int", "float"):
            return value
        raise AttributeError_(
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
            f"{cls._go_struct_name()}.attributes.{name} of type {go_type}"
        )

    def attributes(self) -> dict[str, Any]:
        """Attributes as Toxiproxy serialises them (every field, defaults included)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def validate(self) -> None:
        """Reject impossible values. Upstream rejects none (every integer is
        accepted and each toxic gives negatives a meaning), so neither do we by
        default; a toxic of our own may override this."""

    # -- behaviour -----------------------------------------------------------
    def new_state(self) -> Any:
        """Per-connection state; ``None`` for stateless toxics."""
        return None

    async def pipe(self, chunk: Chunk, ctx: ToxicContext, emit: Emit) -> None:
        """Handle one chunk; the default passes it through untouched."""
        await emit(chunk)

    async def on_close(self, ctx: ToxicContext) -> None:
        """The source reached EOF; return when the close may go on downstream."""

    async def run(self, ctx: ToxicContext) -> None:
        """Background task per connection when ``has_background`` is True."""


_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _is_int64(value: Any) -> bool:
    """True for a JSON integer literal that fits Go's int64 (``1.0`` and ``1e3`` do not:
    Python parses them as floats, and Go refuses them for an integer field)."""
    return isinstance(value, int) and not isinstance(value, bool) and _INT64_MIN <= value <= _INT64_MAX


def _json_kind(value: Any) -> str:
    """How Go's decoder names a JSON value in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
