"""Prometheus text exposition of per-proxy bytes and connections.

Byte counters reuse Toxiproxy's metric names and labels so dashboards built
for it work; connection counts are our addition (Toxiproxy has none).
"""

from __future__ import annotations

from collections.abc import Iterable

from stormproof.harness.faults.proxy import Proxy
from stormproof.harness.faults.toxic_collection import DIRECTIONS

__all__ = ["render_metrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())


def render_metrics(proxies: Iterable[Proxy]) -> str:
    """The /metrics body for the given proxies (sorted by name, stable output)."""
    ordered = sorted(proxies, key=lambda p: p.name)
    out: list[str] = []
    totals = {p.name: p.byte_totals() for p in ordered}
    for metric, index, help_text in (
        ("toxiproxy_proxy_received_bytes_total", 0, "Bytes read from the source of each link."),
        ("toxiproxy_proxy_sent_bytes_total", 1, "Bytes written to the destination of each link."),
    ):
        out.append(f"# HELP {metric} {help_text}")
        out.append(f"# TYPE {metric} counter")
        for p in ordered:
            for direction in DIRECTIONS:
                labels = _labels(direction=direction, listener=p.listen, proxy=p.name, upstream=p.upstream)
                out.append(f"{metric}{{{labels}}} {totals[p.name][index][direction]}")
    out.append("# HELP stormproof_proxy_connections_total Client connections accepted.")
    out.append("# TYPE stormproof_proxy_connections_total counter")
    for p in ordered:
        out.append(f"stormproof_proxy_connections_total{{{_labels(proxy=p.name)}}} {p.counters.connections_total}")
    out.append("# HELP stormproof_proxy_active_connections Client connections open now.")
    out.append("# TYPE stormproof_proxy_active_connections gauge")
    for p in ordered:
        out.append(f"stormproof_proxy_active_connections{{{_labels(proxy=p.name)}}} {p.active_connections}")
    return "\n".join(out) + "\n"
