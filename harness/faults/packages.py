"""Fault packages for the network side, driven through a Toxiproxy API client.

Each toxic type becomes a fault ("latency", "timeout", ...): start adds a
uniquely named toxic, stop removes it, heal removes any we left.  "down"
disables a proxy (refusing and closing connections) and heal re-enables it.
``standard_packages`` wires these and the process faults into the name ->
package map that ``run_schedule`` takes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from stormproof.harness.faults.client import ToxiproxyClient, ToxiproxyError
from stormproof.harness.faults.process import KillFault, ManagedProcess, PauseFault
from stormproof.harness.faults.schedule import FaultPackage

__all__ = ["ToxicFault", "ProxyDownFault", "standard_packages", "TOXIC_TYPES"]

TOXIC_TYPES = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")
_RESERVED = ("stream", "toxicity")


class ToxicFault:
    """Add a toxic of ``toxic_type`` to the target proxy for the fault's duration.

    Params are toxic attributes, plus optional ``stream`` and ``toxicity``.
    """

    def __init__(self, client: ToxiproxyClient, toxic_type: str) -> None:
        self._client = client
        self.toxic_type = toxic_type
        self._ids = itertools.count(1)
        self._added: set[tuple[str, str]] = set()

    def start(self, target: str, params: Mapping[str, Any]) -> tuple[str, str]:
        name = f"stormproof_{self.toxic_type}_{next(self._ids)}"
        attributes = {k: v for k, v in params.items() if k not in _RESERVED}
        self._client.add_toxic(
            target,
            self.toxic_type,
            attributes,
            name=name,
            stream=str(params.get("stream", "downstream")),
            toxicity=float(params.get("toxicity", 1.0)),
        )
        self._added.add((target, name))
        return target, name

    def stop(self, handle: object) -> None:
        target, name = handle  # type: ignore[misc]
        self._remove(target, name)

    def heal(self) -> None:
        for target, name in sorted(self._added):
            self._remove(target, name)

    def _remove(self, target: str, name: str) -> None:
        try:
            self._client.remove_toxic(target, name)
        except ToxiproxyError as exc:
            if exc.status != 404:  # already gone is healed
                raise
        self._added.discard((target, name))


class ProxyDownFault:
    """Disable the target proxy: live connections close, new ones are refused."""

    def __init__(self, client: ToxiproxyClient) -> None:
        self._client = client
        self._touched: set[str] = set()

    def start(self, target: str, params: Mapping[str, Any]) -> str:
        self._touched.add(target)
        self._client.disable_proxy(target)
        return target

    def stop(self, handle: object) -> None:
        self._client.enable_proxy(str(handle))

    def heal(self) -> None:
        for target in sorted(self._touched):
            self._client.enable_proxy(target)


def standard_packages(
    client: ToxiproxyClient | None = None, processes: Mapping[str, ManagedProcess] | None = None
) -> dict[str, FaultPackage]:
    """Every fault we know, keyed by the name schedules use."""
    packages: dict[str, FaultPackage] = {}
    if client is not None:
        for toxic_type in TOXIC_TYPES:
            packages[toxic_type] = ToxicFault(client, toxic_type)
        packages["down"] = ProxyDownFault(client)
    if processes is not None:
        packages["kill"] = KillFault(processes)
        packages["pause"] = PauseFault(processes)
    return packages
