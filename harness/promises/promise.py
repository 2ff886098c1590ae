"""One promise of the plan or the brief, as a row of the promise table."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Promise"]


@dataclass(frozen=True)
class Promise:
    """A falsifiable sentence, the checker that judges it and what puts it at risk.

    ``weaken`` names the fixes (``stormproof.reference_app.weaken``) that, switched off
    together, break exactly this promise; empty when no weakening shows the
    row's teeth yet (the table's ``GAPS`` says what is missing).
    """

    id: str                      # stable slug, e.g. "A2.one-active-session"
    plan_item: str               # "A2", "B1", ... "F3", or "brief-5" for the brief's invariants
    sentence: str                # the falsifiable sentence
    invariant: str               # the checker (registry name) that judges it
    operations: tuple[str, ...]  # history op names (f) that exercise it
    seed: str                    # the seed data it needs, in words
    scenarios: tuple[str, ...]   # scenario names where it is at risk
    weaken: tuple[str, ...]      # the fix names that, switched off together, break exactly this promise
