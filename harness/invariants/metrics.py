"""Prometheus samples as a flat ``{"name{label=\"v\"}": value}`` mapping.

The app's ``/metrics`` text is parsed with prometheus_client's own parser;
each sample is keyed by its sample name (``..._total`` for counters) and its
labels sorted by name, with the exposition format's escaping, so a key reads
exactly like the sample line. ``metric_sum`` adds samples up across labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["metric_key", "metric_sum", "parse_metrics", "split_metric_key", "sum_expositions"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def metric_key(name: str, labels: Mapping[str, str] | None = None) -> str:
    """The key of a sample: ``name`` or ``name{a="x",b="y"}`` (labels sorted)."""
    if not labels:
        return name
    inner = ",".join(f'{key}="{_escape(str(labels[key]))}"' for key in sorted(labels))
    return f"{name}{{{inner}}}"


@lru_cache(maxsize=4096)
def split_metric_key(key: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The inverse of ``metric_key``: (name, sorted (label, value) pairs)."""
    brace = key.find("{")
    if brace < 0:
        return key, ()
    if not key.endswith("}"):
        raise ValueError(f"malformed metric key {key!r}")
    name, body = key[:brace], key[brace + 1 : -1]
    labels: list[tuple[str, str]] = []
    pos = 0
    while pos < len(body):
        eq = body.index("=", pos)
        label = body[pos:eq]
        if body[eq + 1] != '"':
            raise ValueError(f"malformed metric key {key!r}")
        chars: list[str] = []
        pos = eq + 2
        while body[pos] != '"':
            if body[pos] == "\\":
                nxt = body[pos + 1]
                chars.append("\n" if nxt == "n" else nxt)
                pos += 2
            else:
                chars.append(body[pos])
                pos += 1
        labels.append((label, "".join(chars)))
        pos += 1
        if pos < len(body):
            if body[pos] != ",":
                raise ValueError(f"malformed metric key {key!r}")
            pos += 1
    return name, tuple(labels)


def parse_metrics(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text exposition, keyed by ``metric_key``."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[metric_key(sample.name, sample.labels)] = float(sample.value)
    return samples


def sum_expositions(texts: Iterable[str]) -> str:
    """Several processes' expositions as one, each series summed (as ``sum by`` every label would).

    Right for counters and histogram buckets, which is what the checkers
    compare; ``_created`` timestamps are left out (a sum of them means nothing).
    The result is plain ``key value`` lines, which :func:`parse_metrics` reads
    back to the same keys.
    """
    totals: dict[str, float] = {}
    for text in texts:
        for key, value in parse_metrics(text).items():
            if split_metric_key(key)[0].endswith("_created"):
                continue
            totals[key] = totals.get(key, 0.0) + value
    return "".join(f"{key} {value!r}\n" for key, value in sorted(totals.items()))


def metric_sum(metrics: Mapping[str, float], name: str, **label_filter: str) -> float | None:
    """The sum of sample ``name`` over the samples whose labels match the filter.

    None when no sample matches, so a missing counter is not mistaken for 0.
    """
    total = 0.0
    found = False
    for key, value in metrics.items():
        if not key.startswith(name):
            continue
        sample_name, labels = split_metric_key(key)
        if sample_name != name:
            continue
        if label_filter:
            label_map = dict(labels)
            if any(label_map.get(k) != v for k, v in label_filter.items()):
                continue
        total += value
        found = True
    return total if found else None
