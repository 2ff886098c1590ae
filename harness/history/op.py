"""One history operation, and its exact JSON form.

A history is Jepsen's: each client call is an ``invoke`` op followed by one
completion op (``ok``, ``fail`` or ``info``) that points back at its invoke
through ``invoke_index``. Checkers share one history, so an ``Op`` is frozen
all the way down: ``args`` and ``result`` are read-only mappings (``FrozenMap``)
whose nested values are tuples, frozensets and read-only mappings (see ``freeze``).

JSON form (one object per line, keys in this order)::

    {"index":1,"type":"ok","process":"user-3","f":"session.start","tenant":"c1",
     "args":{"appointment_id":"a1"},"status":201,"result":{"id":"s1"},
     "error":null,"time_ns":1200,"wall":1718000000.5,"invoke_index":0}

JSON has no sets, so a frozenset is written as ``{"$set": [items]}`` (items
sorted), which makes ``op_from_json(op_to_json(op)) == op`` exact. A mapping
whose only key is ``"$set"`` is therefore reserved. Floats must be finite.
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

__all__ = [
    "EMPTY",
    "FrozenMap",
    "Op",
    "OpType",
    "freeze",
    "freeze_mapping",
    "op_from_dict",
    "op_from_json",
    "op_to_dict",
    "op_to_json",
]

OpType = Literal["invoke", "ok", "fail", "info"]
OP_TYPES: frozenset[str] = frozenset(("invoke", "ok", "fail", "info"))


class FrozenMap(dict):  # type: ignore[type-arg]
    """A dict that refuses every change: the ``args`` and ``result`` of an ``Op``.

    Not a ``MappingProxyType`` over a dict, as it was: the checkers read these mappings a few million
    times per run, and a proxy's ``get`` is a forwarded method call, twice a dict's (1.2 million calls
    took 13% of ``check_all`` on a 300,000-op history, 2026-12-04). A dict subclass is read at a dict's
    speed, holds one object instead of two (less memory per op), and the JSON encoder writes it as a
    dict with no fallback. The changing methods raise ``TypeError``, as a proxy's item assignment does.
    """

    __slots__ = ()

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise TypeError("a history mapping is read-only (copy it with dict(...) to change it)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __ior__(self, _other: Any) -> NoReturn:  # type: ignore[override,misc]
        self._refuse()

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (dict(self),))  # pickle and copy rebuild it whole, never item by item


#: The shared empty read-only mapping (most ops have no args or no result).
EMPTY: Mapping[str, Any] = FrozenMap()

_SCALARS = (str, int, float, bool, type(None))
_SET_TAG = "$set"


def freeze(value: Any) -> Any:
    """A deeply immutable copy of a JSON-like value.

    dict -> read-only mapping, list/tuple -> tuple, set/frozenset -> frozenset,
    scalars unchanged. A ``{"$set": [...]}`` mapping (the JSON form of a set)
    becomes a frozenset. Already-frozen mappings are trusted as they are.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is FrozenMap:
        return value
    if isinstance(value, Mapping):
        if len(value) == 1 and _SET_TAG in value:
            items = value[_SET_TAG]
            if isinstance(items, (list, tuple)):
                return frozenset(freeze(item) for item in items)
        return freeze_mapping(value)
    if kind is list or kind is tuple:
        return tuple(freeze(item) for item in value)
    if kind is set or kind is frozenset:
        if all(type(item) in _SCALARS for item in value):
            return value if kind is frozenset else frozenset(value)
        return frozenset(freeze(item) for item in value)
    raise TypeError(f"history values must be JSON-like, got {kind.__name__}")


def freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``freeze`` for an args/result mapping (None is the empty mapping)."""
    if value is None or type(value) is FrozenMap:
        return EMPTY if value is None else value
    if not value:
        return EMPTY
    out: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            raise TypeError(f"history mapping keys must be str, got {key!r}")
        out[key] = item if type(item) in _SCALARS else freeze(item)
    return FrozenMap(out)


@dataclass(frozen=True, slots=True)
class Op:
    """An invocation or a completion of one operation.

    ``index`` is the position in the history; ``time_ns`` is monotonic
    nanoseconds since the run's origin (shared by every recorder of a run),
    ``wall`` unix seconds for humans. A completion's ``invoke_index`` names its
    invoke; an invoke's is None.
    """

    index: int
    type: OpType
    process: str
    f: str
    tenant: str | None = None
    args: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    status: int | None = None
    result: Mapping[str, Any] = field(default_factory=lambda: EMPTY, hash=False)
    error: str | None = None
    time_ns: int = 0
    wall: float = 0.0
    invoke_index: int | None = None

    def __post_init__(self) -> None:
        if type(self.args) is not FrozenMap:
            object.__setattr__(self, "args", freeze_mapping(self.args))
        if type(self.result) is not FrozenMap:
            object.__setattr__(self, "result", freeze_mapping(self.result))

    @property
    def is_invoke(self) -> bool:
        return self.type == "invoke"


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        try:
            items = sorted(value)
        except TypeError:
            items = sorted(value, key=repr)
        return {_SET_TAG: items}
    raise TypeError(f"cannot write {type(value).__name__} to a history")


# The C encoder, made once: ``JSONEncoder.encode`` would rebuild it on every call.
_encode = c_make_encoder(
    None, _json_default, encode_basestring_ascii, None, ":", ",", False, False, False
) if c_make_encoder is not None else json.JSONEncoder(
    separators=(",", ":"), default=_json_default, allow_nan=False, check_circular=False
).iterencode


def op_to_dict(op: Op) -> dict[str, Any]:
    """The op as a plain dict with the JSON keys, in schema order."""
    return {
        "index": op.index,
        "type": op.type,
        "process": op.process,
        "f": op.f,
        "tenant": op.tenant,
        "args": op.args,
        "status": op.status,
        "result": op.result,
        "error": op.error,
        "time_ns": op.time_ns,
        "wall": op.wall,
        "invoke_index": op.invoke_index,
    }


def op_to_json(op: Op) -> str:
    """One line of JSON (no newline)."""
    return "".join(_encode(op_to_dict(op), 0))


def dict_to_json(data: dict[str, Any]) -> str:
    """``op_to_json`` of an op given as the plain dict ``op_to_dict`` would make (JSON-like values; sets
    allowed): writers of many ops skip building and freezing an ``Op`` each."""
    return "".join(_encode(data, 0))


def op_from_dict(data: Mapping[str, Any]) -> Op:
    """Rebuild an op from its JSON dict, validating the type field."""
    op_type = data["type"]
    if op_type not in OP_TYPES:
        raise ValueError(f"unknown op type {op_type!r}")
    return Op(
        index=data["index"],
        type=op_type,
        process=data["process"],
        f=data["f"],
        tenant=data.get("tenant"),
        args=freeze_mapping(data.get("args")),
        status=data.get("status"),
        result=freeze_mapping(data.get("result")),
        error=data.get("error"),
        time_ns=data.get("time_ns", 0),
        wall=data.get("wall", 0.0),
        invoke_index=data.get("invoke_index"),
    )


def op_from_json(line: str | bytes) -> Op:
    """Parse one line written by ``op_to_json``."""
    return op_from_dict(json.loads(line))
