"""The promise table: well formed, consistent with the registry, the weakenings, the scenarios and its doc."""

from __future__ import annotations

import re
from pathlib import Path

from stormproof.harness.history import vocabulary
from stormproof.harness.invariants.registry import names
from stormproof.harness.promises import GAPS, PROMISES, Promise
from stormproof.harness.promises.markdown import render_markdown
from stormproof.reference_app.weaken import WEAKENINGS

ROOT = Path(__file__).resolve().parents[2]
OP_NAMES = {value for name, value in vars(vocabulary).items() if name.isupper() and isinstance(value, str)}
PLAN_ITEMS = {f"{letter}{n}" for letter, count in zip("ABCDEF", (4, 3, 3, 2, 5, 3)) for n in range(1, count + 1)}


def test_forty_or_more_promises_with_unique_ids() -> None:
    assert len(PROMISES) >= 40
    ids = [p.id for p in PROMISES]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[A-Za-z0-9.-]+", i) for i in ids)


def test_every_plan_item_and_the_brief_have_rows() -> None:
    items = {p.plan_item for p in PROMISES}
    assert items <= PLAN_ITEMS | {"brief-5"}
    assert items >= PLAN_ITEMS | {"brief-5"}


def test_rows_name_real_checkers_operations_weakenings_and_scenarios() -> None:
    checkers = set(names())
    scenarios = {path.stem for path in (ROOT / "scenarios").glob("*.toml")}
    for promise in PROMISES:
        assert isinstance(promise, Promise)
        assert promise.invariant in checkers, promise.id
        assert set(promise.operations) <= OP_NAMES, promise.id
        assert set(promise.weaken) <= set(WEAKENINGS), promise.id
        assert promise.scenarios and set(promise.scenarios) <= scenarios, promise.id
        # a row that names no operation counts 0 in every run ("not exercised"), and verify reads its
        # weakened tries as escapes (E4.db-pool-gauges until 2026-12-02)
        assert promise.operations, promise.id
        assert promise.sentence.endswith(".") and promise.seed, promise.id


def test_a_row_without_weakening_says_what_it_lacks() -> None:
    assert set(GAPS) <= {p.id for p in PROMISES}
    assert [p.id for p in PROMISES if not p.weaken and p.id not in GAPS] == []


def test_every_weakening_breaks_some_promise() -> None:
    used = {name for p in PROMISES for name in p.weaken}
    assert set(WEAKENINGS) <= used, set(WEAKENINGS) - used


def test_committed_doc_is_the_generated_one() -> None:
    committed = (ROOT / "docs" / "PROMISES.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), "run: python -m stormproof.harness.promises --markdown > docs/PROMISES.md"


def test_every_scenario_of_a_row_checks_its_invariant() -> None:
    """Otherwise `stormproof verify` could never catch the row's weakening in that scenario."""
    from stormproof.harness.plan import ALWAYS_CHECKS, SLO_CHECKS
    from stormproof.scenarios import load_scenario

    for promise in PROMISES:
        for name in promise.scenarios:
            checked = set(load_scenario(name).invariants) | set(ALWAYS_CHECKS) | set(SLO_CHECKS)
            assert promise.invariant in checked, (promise.id, name)
