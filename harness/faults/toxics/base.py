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

    Subclasses register themselves with ``harness.faults.toxics.registry.register``
    and live in their own module; nothing else needs to change to add one.
    """

    type_name: ClassVar[str] = ""
    #: True when ``run`` must be started per connection (timers, not data driven).
    has_background: ClassVar[bool] = False

    # -- wire format ---------------------------------------------------------
    @classmethod
    def from_attributes(
        cls, attributes: Mapping[str, Any], base: "Toxic | None" = None
    ) -> "Toxic":
        """Build from JSON attributes; unknown keys are ignored like Go's decoder.

        ``base`` supplies values for missing keys (partial update semantics).
        """
        if not isinstance(attributes, Mapping):
            raise AttributeError_("attributes must be a JSON object")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name in attributes and attributes[field.name] is not None:
                values[field.name] = _coerce(cls.type_name, field.name, field.type, attributes[field.name])
            elif base is not None:
                values[field.name] = getattr(base, field.name)
        toxic = cls(**values)
        toxic.validate()
        return toxic

    def attributes(self) -> dict[str, Any]:
        """Attributes as Toxiproxy serialises them (every field, defaults included)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def validate(self) -> None:
        """Reject impossible values; default: every numeric attribute >= 0."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and value < 0:
                raise AttributeError_(f"{self.type_name}.{f.name} must be >= 0, got {value}")

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


def _coerce(toxic: str, name: str, annotation: Any, value: Any) -> Any:
    """Type-check one attribute the way Go's json decoder would (ints stay ints)."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if isinstance(value, bool):
        raise AttributeError_(f"{toxic}.{name} must be a number, got {value!r}")
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise AttributeError_(f"{toxic}.{name} must be an integer, got {value!r}")
        return value
    if kind == "float":
        if not isinstance(value, (int, float)):
            raise AttributeError_(f"{toxic}.{name} must be a number, got {value!r}")
        return float(value)
    return value
