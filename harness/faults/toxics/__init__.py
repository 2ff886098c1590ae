"""Toxics: one module per toxic, each registered under its Toxiproxy wire name.

Importing this package imports every sibling module, which registers it; the
proxy only ever goes through ``lookup``.
"""

from __future__ import annotations

import importlib
import pkgutil

from stormproof.harness.faults.toxics.base import AttributeError_, Chunk, Emit, Toxic, ToxicContext
from stormproof.harness.faults.toxics.registry import lookup, names, register

__all__ = [
    "AttributeError_",
    "Chunk",
    "Emit",
    "Toxic",
    "ToxicContext",
    "lookup",
    "names",
    "register",
]

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in {"base", "registry"} and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
