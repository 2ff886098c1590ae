"""How many completed operations of a history exercised a promise.

A promise is exercised by an operation that put it at risk and got a
definite or unknown answer (``ok``, ``fail`` or ``info``; an invoke without
completion counts for nothing). Most promises are exercised by any completed
operation of their names; some need a situation, and count only operations
that created it: a key used again (replay), a key used again with another
payload (mismatch), a key used while its first request ran (concurrent), a
probe of one route. Counters are plain functions of the history's pairs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import NEMESIS, PROBE

__all__ = [
    "Counter",
    "by_operations",
    "completed",
    "key_concurrent",
    "key_mismatch",
    "key_missing",
    "key_repeat",
    "key_shared_across_tenants",
    "probe_case",
    "probe_route",
    "with_arg",
]

#: A counter: the completed pairs of a history that exercised a promise, counted.
Counter = Callable[[History], int]


def completed(history: History, names: Iterable[str]) -> Iterable[tuple[Op, Op]]:
    """The pairs of ``names`` that have a completion (the nemesis's ops never count)."""
    for invoke, completion in history.pairs_of(*names):
        if completion is not None and invoke.process != NEMESIS:
            yield invoke, completion


def by_operations(names: tuple[str, ...]) -> Counter:
    """Every completed operation of ``names``."""
    return lambda history: sum(1 for _ in completed(history, names))


def with_arg(names: tuple[str, ...], arg: str) -> Counter:
    """Completed operations of ``names`` whose args carry ``arg`` (not None)."""
    return lambda history: sum(1 for invoke, _ in completed(history, names) if invoke.args.get(arg) is not None)


def _keyed(history: History, names: tuple[str, ...]) -> dict[tuple[str | None, object], list[tuple[Op, Op]]]:
    """Completed keyed pairs grouped by (tenant, key), in invoke order."""
    groups: dict[tuple[str | None, object], list[tuple[Op, Op]]] = defaultdict(list)
    for invoke, completion in completed(history, names):
        key = invoke.args.get("idempotency_key")
        if key is not None:
            groups[(invoke.tenant, key)].append((invoke, completion))
    for pairs in groups.values():
        pairs.sort(key=lambda pair: pair[0].time_ns)
    return groups


def _fingerprint(invoke: Op) -> tuple[str, object]:
    return (invoke.f, invoke.args.get("payload_fp"))


def _key_uses(names: tuple[str, ...], counts: Callable[[set[tuple[str, object]], tuple[str, object]], bool]) -> Counter:
    """Uses of a key that ``counts`` flags, given the fingerprints the key was used with before."""

    def count(history: History) -> int:
        total = 0
        for pairs in _keyed(history, names).values():
            seen: set[tuple[str, object]] = set()
            for invoke, _ in pairs:
                fp = _fingerprint(invoke)
                total += counts(seen, fp)
                seen.add(fp)
        return total

    return count


def key_repeat(names: tuple[str, ...]) -> Counter:
    """Uses of a key again with the same operation and payload: the replay situation."""
    return _key_uses(names, lambda seen, fp: fp in seen)


def key_mismatch(names: tuple[str, ...]) -> Counter:
    """Uses of a key already used with another operation or payload: the 422 situation."""
    return _key_uses(names, lambda seen, fp: bool(seen - {fp}))


def key_concurrent(names: tuple[str, ...]) -> Counter:
    """Uses of a key invoked while an earlier use of it was still unanswered: the 409 situation."""

    def count(history: History) -> int:
        total = 0
        for pairs in _keyed(history, names).values():
            open_until = -1
            for invoke, completion in pairs:
                total += invoke.time_ns < open_until
                open_until = max(open_until, completion.time_ns)
        return total

    return count


def key_missing(names: tuple[str, ...]) -> Counter:
    """Operations of ``names`` sent without an Idempotency-Key (where one is required: the 400 situation)."""
    return lambda history: sum(
        1 for invoke, _ in completed(history, names) if invoke.args.get("idempotency_key") is None
    )


def key_shared_across_tenants(names: tuple[str, ...]) -> Counter:
    """Uses of a key that another tenant used before: the per-tenant scope situation."""

    def count(history: History) -> int:
        tenants: dict[object, set[str | None]] = defaultdict(set)
        total = 0
        pairs = sorted(completed(history, names), key=lambda pair: pair[0].time_ns)
        for invoke, _ in pairs:
            key = invoke.args.get("idempotency_key")
            if key is None:
                continue
            total += bool(tenants[key] - {invoke.tenant})
            tenants[key].add(invoke.tenant)
        return total

    return count


def probe_case(name: str, case: str) -> Counter:
    """Probes of op ``name`` whose situation (their ``probe`` argument) is ``case``."""
    return lambda history: sum(1 for invoke, _ in completed(history, (name,)) if invoke.args.get("probe") == case)


def probe_route(method: str, template: str) -> Counter:
    """Cross-tenant probes of one route (``template`` with ``{...}`` placeholders), any id in the path (a probe
    of another tenant's id in the body, ``body_field``, is counted by its own promise)."""
    pattern = re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)) + r"(\?.*)?$")

    def count(history: History) -> int:
        return sum(
            1 for invoke, _ in completed(history, (PROBE,))
            if str(invoke.args.get("method", "GET")).upper() == method and invoke.args.get("body_field") is None
            and pattern.match(str(invoke.args.get("path", "")))
        )

    return count
