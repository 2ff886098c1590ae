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

    ``judged_by`` names a count in the summary of the checker's verdict, for a
    promise judged on the final state or on something other than the history
    (the workers' log lines, the jobs Shunya failed): the operations that put it
    at risk do not show that the checker had anything to judge, so the run's
    coverage is the smaller of the two counts (no log read: not exercised).
    """

    id: str                      # stable slug, e.g. "A2.one-active-session"
    plan_item: str               # "A2", "B1", ... "F3", or "brief-5" for the brief's invariants
    sentence: str                # the falsifiable sentence
    invariant: str               # the checker (registry name) that judges it
    operations: tuple[str, ...]  # history op names (f) that exercise it
    seed: str                    # the seed data it needs, in words
    scenarios: tuple[str, ...]   # scenario names where it is at risk
    weaken: tuple[str, ...]      # the fix names that, switched off together, break exactly this promise
    judged_by: str | None = None  # a count in the checker's verdict summary that bounds the coverage
