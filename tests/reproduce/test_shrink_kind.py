"""Shrinking keeps the run's kind of violation: another kind of the same invariant is another bug.

A fake replayer stands for the stack: it answers each candidate case with the violation kinds the case
would show, so the test needs no services. Step 1 alone shows the run's kind; without it, steps 2 and 3
still break the invariant, but with another kind (as webhook-signature's case shrank from an applied
forgery to a forgery answered other than 401).
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.invariants import Verdict, Violation
from stormproof.harness.reproduce import Case, shrink
from stormproof.harness.reproduce.case import Step
from stormproof.harness.reproduce.repeat import measure
from stormproof.harness.reproduce.replay import Attempt

INVARIANT = "job-applied-once"


def _case() -> Case:
    steps = tuple(Step(index=i, group=1, process=f"u{i}", f="webhook.deliver", tenant="t0") for i in (1, 2, 3))
    return Case(invariant=INVARIANT, steps=steps, source={"kind": "applied-forgery"})


class _Replayer:
    """What a case shows: step 1 the run's kind; steps 2 and 3 together another kind."""

    def attempt(self, case: Case) -> Attempt:
        present = {s.index for s in case.steps}
        kinds = (["applied-forgery"] if 1 in present else []) + (["forged-delivery-status"] if {2, 3} <= present else [])
        violations = tuple(Violation(INVARIANT, kind, (), {"type": kind}) for kind in kinds)
        verdict = Verdict(INVARIANT, "invalid" if violations else "valid", "safety", violations)
        return Attempt(bool(violations), verdict, History(()), 0.0)


def _shrunk(kind: str | None) -> Case:
    case = _case()
    return shrink(case, lambda c: measure(_Replayer(), c, 3, need=0.9, kind=kind).rate >= 0.9, budget_s=10).case


def test_shrinking_keeps_the_request_that_shows_the_runs_kind() -> None:
    assert [s.index for s in _shrunk("applied-forgery").steps] == [1]


def test_without_a_kind_any_violation_of_the_invariant_would_do() -> None:
    # the behaviour the kind guards against: ddmin drops step 1 first, since 2 and 3 still break the invariant
    assert [s.index for s in _shrunk(None).steps] == [2, 3]


def test_a_rate_counts_only_the_kind_asked_for() -> None:
    case = _case().with_parts(tuple(s for s in _case().steps if s.index != 1), ())
    assert measure(_Replayer(), case, 3).reproduced == 3
    assert measure(_Replayer(), case, 3, kind="applied-forgery").reproduced == 0
