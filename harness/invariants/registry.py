"""Checkers by name, and running them so that a crash is ``unknown``, never valid.

A checker is a plain function ``(History, Snapshot) -> Verdict`` registered
under its invariant's name with the ``checker`` decorator. Every module of
``stormproof.harness.invariants.checkers`` is imported on first use, so adding a
checker is adding one module there; nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stormproof.harness.history import History
from stormproof.harness.history.gcpause import paused_gc
from stormproof.harness.invariants.config import CheckConfig
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Kind, Verdict

__all__ = ["Checker", "CheckerInfo", "check_all", "checker", "get_checker", "names", "run_checker"]

Checker = Callable[[History, Snapshot], Verdict]


@dataclass(frozen=True, slots=True)
class CheckerInfo:
    name: str
    kind: Kind
    fn: Checker
    #: Whether the checker reads the app's ``/metrics`` (``snapshot.metrics``, ``.baseline``): a caller that
    #: runs only checkers that do not may leave them out (a replay: two scrapes and parsing, 0.4 s of each).
    reads_metrics: bool = False

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip().split("\n\n")[0]


_REGISTRY: dict[str, CheckerInfo] = {}
_loaded = False


def checker(name: str, kind: Kind, *, reads_metrics: bool = False) -> Callable[[Checker], Checker]:
    """Decorator: register ``fn`` as the checker of invariant ``name`` (``reads_metrics``: it reads the
    snapshot's metrics, which a snapshot for other checkers may leave out)."""

    def register(fn: Checker) -> Checker:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"checker {name!r} registered twice")
        _REGISTRY[name] = CheckerInfo(name, kind, fn, reads_metrics)
        return fn

    return register


def _load() -> None:
    global _loaded
    if _loaded:
        return
    package = importlib.import_module("stormproof.harness.invariants.checkers")
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package.__name__}.{module.name}")
    _loaded = True


def names() -> list[str]:
    """Every registered invariant name, sorted."""
    _load()
    return sorted(_REGISTRY)


def get_checker(name: str) -> CheckerInfo:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no checker named {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def run_checker(info: CheckerInfo, history: History, snapshot: Snapshot) -> Verdict:
    """Run one checker; any exception or malformed answer gives ``unknown`` with the error."""
    try:
        with paused_gc():  # checkers build large acyclic indexes; see stormproof.harness.history.gcpause
            verdict = info.fn(history, snapshot)
    except Exception as exc:  # noqa: BLE001 - a crashing checker must never count as a pass
        return Verdict(
            invariant=info.name,
            status="unknown",
            kind=info.kind,
            summary={"traceback": traceback.format_exc(limit=-5)},
            error=f"checker crashed: {type(exc).__name__}: {exc}",
        )
    if not isinstance(verdict, Verdict) or verdict.invariant != info.name:
        return Verdict(info.name, "unknown", info.kind, error=f"checker returned {verdict!r}, not its Verdict")
    return verdict


def check_all(
    history: History,
    snapshot: Snapshot,
    names: Iterable[str] | None = None,
    *,
    config: CheckConfig | None = None,
) -> list[Verdict]:
    """Run the named checkers (all when ``names`` is None), in the given order.

    ``config`` replaces ``snapshot.config`` for this run. Unknown names raise
    ``KeyError`` before anything runs: a typo must not pass silently.
    """
    _load()
    chosen = [get_checker(name) for name in (sorted(_REGISTRY) if names is None else names)]
    if config is not None:
        snapshot = snapshot.with_config(config)
    # One pause for the whole run: re-enabling the collector between checkers let it rescan every op and
    # index still alive, once per checker (about 5% of check_all on 200k ops, py-spy).
    with paused_gc():
        return [run_checker(info, history, snapshot) for info in chosen]
