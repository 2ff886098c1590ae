"""The cells of the matrix: (weakening set, scenario) -> the invariants that must become invalid.

Two sources name cells, and both are taken as they are, never re-derived:
each scenario file's ``weaken``/``expect`` (the bug the scenario was written
for) and, when ``stormproof.harness.promises`` exists, every promise of the table (the
fixes that break it, the scenarios where it is at risk, the checker that
judges it). Two sources naming the same weakening set and scenario make one
cell expecting the union of their invariants, so a scenario is not run twice
for the same bug.

A promise the table marks as a known gap (``stormproof.harness.promises.GAPS``: no
checker judges its sentence in a run yet, or no load creates its situation)
makes no cell: it is listed with the promises no run verifies, so the
matrix neither runs a cell that cannot be caught nor hides that it exists.

A source that names a scenario or a weakening that does not exist is a
:class:`VerifyError` (exit 2): a typo in the table must not turn into a
cell that silently never runs. A cell whose expected invariant the scenario
does not check is kept, with its ``problem`` said, and counts as an escape:
no run of that scenario could ever catch it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from stormproof.harness.plan.run_plan import ALWAYS_CHECKS, SLO_CHECKS
from stormproof.scenarios import Scenario

__all__ = ["Cell", "PromiseLike", "VerifyError", "build_cells", "select_cells", "uncovered_promises"]

SCENARIO_SOURCE = "scenario file"
PROMISE_SOURCE = "promise "


class VerifyError(ValueError):
    """Bad input to ``stormproof verify`` (an unknown name, an empty selection); exit 2."""


class PromiseLike(Protocol):
    """The fields of ``stormproof.harness.promises.Promise`` that the matrix reads."""

    id: str
    invariant: str
    scenarios: tuple[str, ...]
    weaken: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: run ``scenario`` with exactly the fixes ``weaken`` off; every ``expect`` must be invalid."""

    weaken: tuple[str, ...]
    scenario: str
    expect: tuple[str, ...]
    #: Where the cell comes from: "scenario file" and/or "promise <id>".
    sources: tuple[str, ...]
    #: Why no run can catch this cell as written (then it is an escape without running).
    problem: str | None = None

    @property
    def promises(self) -> tuple[str, ...]:
        """The promise table's rows this cell comes from (each must be exercised by a try that catches it)."""
        return tuple(source.removeprefix(PROMISE_SOURCE) for source in self.sources
                     if source.startswith(PROMISE_SOURCE))

    @property
    def label(self) -> str:
        return f"{'+'.join(self.weaken)} @ {self.scenario}"


def build_cells(scenarios: Iterable[Scenario], promises: Iterable[PromiseLike] = (),
                weakenings: Iterable[str] | None = None, gaps: Mapping[str, str] | None = None,
                scenarios_by_name: Mapping[str, Scenario] | None = None) -> tuple[Cell, ...]:
    """Every cell named by the scenarios' ``weaken``/``expect`` and by the promises, in a stable order.

    ``weakenings`` are the known fix names (default: the reference app's);
    promises whose id is in ``gaps`` make no cell (see :func:`uncovered_promises`).
    ``scenarios_by_name`` resolves the scenarios promises name when ``scenarios``
    (whose files' own cells are made) is not all of them.
    """
    cell_sources = tuple(scenarios)
    by_name: dict[str, Scenario] = dict(scenarios_by_name or {})
    by_name.update({s.name: s for s in cell_sources})
    known = set(weakenings) if weakenings is not None else _known_weakenings()
    expect: dict[tuple[tuple[str, ...], str], list[str]] = {}
    sources: dict[tuple[tuple[str, ...], str], list[str]] = {}

    def add(weaken: Sequence[str], scenario: str, invariants: Sequence[str], source: str) -> None:
        key = (tuple(sorted(set(weaken))), scenario)
        wanted = expect.setdefault(key, [])
        wanted += [i for i in invariants if i not in wanted]
        sources.setdefault(key, []).append(source)

    for scenario in cell_sources:
        if scenario.weaken:
            add(scenario.weaken, scenario.name, scenario.expect, SCENARIO_SOURCE)
    for promise in promises:
        if not promise.weaken or promise.id in (gaps or {}):
            continue
        unknown = sorted(set(promise.weaken) - known)
        if unknown:
            raise VerifyError(f"promise {promise.id} names unknown weakening(s) {', '.join(unknown)}")
        for name in promise.scenarios:
            if name not in by_name:
                raise VerifyError(f"promise {promise.id} names scenario {name!r}, which does not exist; "
                                  f"built-in: {', '.join(sorted(by_name))}")
            add(promise.weaken, name, (promise.invariant,), f"{PROMISE_SOURCE}{promise.id}")

    cells = []
    for (weaken, name), invariants in sorted(expect.items()):
        checked = set(by_name[name].invariants) | set(ALWAYS_CHECKS) | set(SLO_CHECKS)  # every run adds these
        missing = [i for i in invariants if i not in checked]
        problem = None
        if not invariants:
            problem = "nothing is expected to break (the scenario file has weaken but no expect)"
        elif missing:
            problem = f"scenario {name} does not check {', '.join(missing)}: no run of it can catch this"
        cells.append(Cell(weaken, name, tuple(invariants), tuple(sources[(weaken, name)]), problem))
    return tuple(cells)


def uncovered_promises(promises: Iterable[PromiseLike], gaps: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Ids of promises that make no cell: no weakening breaks them, no scenario puts them at risk,
    or the table marks them as a known gap."""
    return tuple(p.id for p in promises if not p.weaken or not p.scenarios or p.id in (gaps or {}))


def select_cells(cells: Sequence[Cell], *, only: Sequence[str] = (), scenario: str | None = None,
                 weakenings: Iterable[str] | None = None, scenarios: Iterable[str] = ()) -> tuple[Cell, ...]:
    """The cells ``--only`` and ``--scenario`` keep; an unknown name or an empty selection is a VerifyError.

    ``--only`` keeps the cells whose weakening set contains any of the named
    fixes (a fix that only breaks something together with another is still
    selected by its own name).
    """
    known = set(weakenings) if weakenings is not None else _known_weakenings()
    unknown = sorted(set(only) - known)
    if unknown:
        raise VerifyError(f"--only: unknown weakening(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    names = set(scenarios) | {c.scenario for c in cells}
    if scenario is not None and scenario not in names:
        raise VerifyError(f"--scenario: no scenario named {scenario!r}; built-in: {', '.join(sorted(names))}")
    chosen = [c for c in cells
              if (not only or set(only) & set(c.weaken)) and (scenario is None or c.scenario == scenario)]
    if not chosen:
        what = " and ".join(filter(None, (f"--only {','.join(only)}" if only else "",
                                          f"--scenario {scenario}" if scenario else "")))
        raise VerifyError(f"no cell of the matrix matches {what or 'the selection'}")
    return tuple(chosen)


def _known_weakenings() -> set[str]:
    from stormproof.reference_app.weaken import WEAKENINGS

    return set(WEAKENINGS)

