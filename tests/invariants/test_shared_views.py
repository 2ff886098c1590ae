"""The views checkers share (``History.view``) change no verdict.

``check_all`` runs every checker on one history, so an index one checker
builds is reused by the next; a checker run alone builds its own. Both must
give the same verdicts, to the last detail, on generated histories with seeded
violations (a shared view that a checker changed, or that answers another
question than the one a checker asked, shows up as a difference). The one
pass over every answer (``_answers``) is also compared with the per-checker
loops it replaced, on a history that has every kind of answer it sorts.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import NEMESIS
from stormproof.harness.invariants import check_all, names
from stormproof.harness.invariants.checkers._answers import Answers, answers
from stormproof.harness.invariants.verdict import verdict_to_dict
from tests.invariants.model import BUGS, generate


@pytest.mark.parametrize("bug", (None, *BUGS))
@pytest.mark.parametrize("seed", range(4))
def test_check_all_with_shared_views_equals_each_checker_alone(bug: str | None, seed: int) -> None:
    run = generate(seed, n_ops=120, processes=5, bug=bug, info_rate=0.2)
    shared = check_all(History(run.history.ops), run.snapshot)
    alone = [check_all(History(run.history.ops), run.snapshot, [name])[0] for name in names()]
    assert [verdict_to_dict(v) for v in shared] == [verdict_to_dict(v) for v in alone]
    if bug is not None and run.bug_manifested:  # the seeded violation is there to compare
        assert any(v.status == "invalid" for v in shared)


def test_a_view_is_built_once_per_history() -> None:
    history = generate(1).history
    assert answers(history) is answers(history)
    assert answers(History(history.ops)) is not answers(history)


def _answer_history(seed: int) -> History:
    """Client and nemesis ops of several operations: ok, fail, info, 5xx, never completed; traces; replays."""
    rng = random.Random(seed)
    ops: list[Op] = []
    open_: list[int] = []
    t = 0
    for _ in range(400):
        t += rng.randrange(1, 5)
        if open_ and rng.random() < 0.5:
            invoke = ops[open_.pop(rng.randrange(len(open_)))]
            status = rng.choice((200, 201, 404, 409, 422, 500, 503, None))
            kind = "info" if status is None or (status >= 500 and rng.random() < 0.5) else (
                "ok" if status < 300 else "fail")
            result: dict[str, object] = {}
            if rng.random() < 0.7:
                result["trace"] = rng.choice(("echoed", "echoed", "other", "missing"))
            if rng.random() < 0.3:
                result["replayed"] = rng.random() < 0.7
            ops.append(Op(len(ops), kind, invoke.process, invoke.f, invoke.tenant, invoke.args, status, result,
                          None, t, 0.0, invoke.index))
        else:
            process = NEMESIS if rng.random() < 0.1 else f"p{rng.randrange(4)}"
            f = rng.choice(("session.start", "appointment.read", "call.submit", "fault"))
            ops.append(Op(len(ops), "invoke", process, f, "c1", {}, time_ns=t))
            open_.append(len(ops) - 1)
    return History(ops)


@pytest.mark.parametrize("seed", range(5))
def test_answers_equal_the_loops_they_replaced(seed: int) -> None:
    history = _answer_history(seed)
    seen = Answers(history)

    latencies: dict[str, list[int]] = {}  # slo-latency-p95
    for invoke, completion in history.pairs():
        if completion is None or completion.type != "ok" or invoke.process == NEMESIS:
            continue
        latencies.setdefault(invoke.f, []).append(completion.time_ns - invoke.time_ns)
    assert seen.latencies == latencies

    totals: Counter[str] = Counter()  # slo-error-rate
    errors: Counter[str] = Counter()
    examples: list[int] = []
    for invoke, completion in history.pairs():
        if invoke.process == NEMESIS:
            continue
        totals[invoke.f] += 1
        if completion is None or completion.type == "info" or (completion.status or 0) >= 500:
            errors[invoke.f] += 1
            if len(examples) < 20:
                examples.append(invoke.index if completion is None else completion.index)
    assert seen.totals == dict(totals)
    assert {f: n for f, n in seen.errors.items() if n} == dict(errors)
    assert seen.error_examples == examples and len(examples) == 20

    judged = 0  # trace-echoed
    wrong: dict[str, list[int]] = {"other": [], "missing": []}
    for _, completion in history.pairs():
        if completion is None or completion.status is None:
            continue
        trace = completion.result.get("trace")
        if trace is None:
            continue
        judged += 1
        if trace in wrong:
            wrong[trace].append(completion.index)
    assert (seen.traced, seen.trace_wrong) == (judged, wrong)
    assert wrong["other"] and wrong["missing"]

    replayed = [c.index for _, c in history.pairs()  # metrics-agree
                if c is not None and c.type == "ok" and c.result.get("replayed")]
    assert seen.replayed == replayed and replayed
