"""Wire name -> toxic class, the single place the API looks toxics up.

Mirrors Toxiproxy's ``toxics.Register``: each toxic module registers itself on
import, and the package imports every module it contains, so adding a toxic is
adding one file.
"""

from __future__ import annotations

from stormproof.harness.faults.toxics.base import Toxic

__all__ = ["register", "lookup", "names"]

_REGISTRY: dict[str, type[Toxic]] = {}


def register(cls: type[Toxic]) -> type[Toxic]:
    """Class decorator: make ``cls`` available under ``cls.type_name``."""
    if not cls.type_name:
        raise ValueError(f"{cls.__name__} has no type_name")
    existing = _REGISTRY.get(cls.type_name)
    if existing is not None and existing is not cls:
        raise ValueError(f"toxic type {cls.type_name!r} registered twice")
    _REGISTRY[cls.type_name] = cls
    return cls


def lookup(type_name: str) -> type[Toxic] | None:
    """The class registered for ``type_name``, or None."""
    return _REGISTRY.get(type_name)


def names() -> list[str]:
    """Every registered wire name, sorted."""
    return sorted(_REGISTRY)
