"""noop: passes data through unchanged (Toxiproxy registers it too; handy in tests)."""

from __future__ import annotations

from dataclasses import dataclass

from stormproof.harness.faults.toxics.base import Toxic
from stormproof.harness.faults.toxics.registry import register


@register
@dataclass(frozen=True, slots=True)
class NoopToxic(Toxic):
    """Does nothing, but still forces the connection off the no-toxic fast path."""

    type_name = "noop"
