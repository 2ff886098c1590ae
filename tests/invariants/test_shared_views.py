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
from stormproof.harness.history.vocabulary import LOAD_STOPPED, NEMESIS
from stormproof.harness.invariants import Snapshot, check_all, names
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
            error = f"{LOAD_STOPPED}: GreenletExit" if status is None and rng.random() < 0.3 else None
            ops.append(Op(len(ops), kind, invoke.process, invoke.f, invoke.tenant, invoke.args, status, result,
                          error, t, 0.0, invoke.index))
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
        if completion is not None and completion.error and completion.error.startswith(LOAD_STOPPED):
            continue  # the load cut it: nobody's error, in neither count
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


def _tenant_history(seed: int) -> History:
    """Ops of several tenants with keys, probes, foreign company ids, 429s, nemesis ops and lost answers."""
    rng = random.Random(seed)
    ops: list[Op] = []
    open_: list[int] = []
    t = 0
    for _ in range(600):
        t += rng.randrange(1, 50_000_000)
        if open_ and rng.random() < 0.5:
            invoke = ops[open_.pop(rng.randrange(len(open_)))]
            status = rng.choice((200, 201, 404, 409, 422, 429, 500, None))
            kind = "info" if status is None else ("ok" if status < 300 else "fail")
            result: dict[str, object] = {}
            if rng.random() < 0.6:
                result["company_ids_seen"] = frozenset(rng.sample(("c1", "c2", "c3"), rng.randrange(0, 3)))
            if rng.random() < 0.5:
                result["id"] = rng.choice(("r1", "r2", "r3", None))
            error = f"{LOAD_STOPPED}: GreenletExit" if status is None and rng.random() < 0.3 else None
            ops.append(Op(len(ops), kind, invoke.process, invoke.f, invoke.tenant, invoke.args, status, result,
                          error, t, 0.0, invoke.index))
            continue
        process = NEMESIS if rng.random() < 0.1 else f"p{rng.randrange(4)}"
        f = rng.choice(("session.start", "appointment.read", "call.submit", "webhook.deliver",
                        "probe.cross_tenant", "probe.idempotency"))
        args: dict[str, object] = {"appointment_id": rng.choice(("a1", "a2", "r1"))}
        if rng.random() < 0.5:
            args["idempotency_key"] = rng.choice(("k1", "k2", "k3", None))
            if rng.random() < 0.7:
                args["payload_fp"] = rng.choice(("x", "y"))
        if f.startswith("probe."):
            args.update(probe_id=rng.choice(("q1", "q2", "q3", None)), control=rng.random() < 0.3,
                        probe=rng.choice(("expired", "replay")))
        ops.append(Op(len(ops), "invoke", process, f, rng.choice(("c1", "c2", "c3", None)), args, time_ns=t))
        open_.append(len(ops) - 1)
    return History(ops)


@pytest.mark.parametrize("seed", range(5))
def test_tenant_key_and_rate_parts_equal_the_loops_they_replaced(seed: int) -> None:
    history = _tenant_history(seed)
    seen = Answers(history)
    assert not seen.failed

    responses = 0  # tenant-isolation, in history order
    foreign: list[int] = []
    probe_answers: Counter[str] = Counter()
    probes: dict[object, dict[bool, tuple[Op, Op]]] = {}
    named: dict[str, set[object]] = {}
    for invoke, completion in history.pairs():
        if completion is None or invoke.process == NEMESIS:
            continue
        responses += 1
        ids_seen = completion.result.get("company_ids_seen")
        if ids_seen and invoke.tenant is not None and (len(ids_seen) > 1 or invoke.tenant not in ids_seen):
            foreign.append(invoke.index)
        if invoke.f == "probe.cross_tenant":
            control = bool(invoke.args.get("control"))
            if not control:
                probe_answers[str(completion.status) if completion.type != "info" else "info"] += 1
            probes.setdefault(invoke.args.get("probe_id") or ("solo", invoke.index), {})[control] = (
                invoke, completion)
        elif completion.type == "ok" and invoke.tenant is not None:
            ids = named.setdefault(invoke.tenant, set())
            ids.update(v for k, v in invoke.args.items()
                       if k.endswith("_id") and k not in ("company_id", "target_id", "probe_id"))
            ids.update({completion.result.get("id")} - {None})
    probes = dict(sorted(probes.items(), key=lambda item: min(p[0].index for p in item[1].values())))
    assert (seen.responses, [i for i, _, _ in seen.foreign_data]) == (responses, foreign) and foreign
    assert seen.probe_answers == probe_answers and list(seen.probes.items()) == list(probes.items()) and probes
    assert seen.named == named

    groups: dict[tuple[object, object], list[tuple[Op, Op]]] = {}  # idempotent-replay
    keyed = unfingerprinted = 0
    for invoke, completion in history.pairs():
        key = invoke.args.get("idempotency_key")
        if key is None:
            continue
        keyed += 1
        if completion is None or (invoke.f == "probe.idempotency" and invoke.args.get("probe") == "expired"):
            continue
        unfingerprinted += invoke.args.get("payload_fp") is None
        if completion.type == "ok" or completion.status == 404 or (
                completion.status == 409 and completion.result.get("problem") not in ("idempotency-key-in-flight", None)):
            groups.setdefault((invoke.tenant, key), []).append((invoke, completion))
    assert (seen.keyed, seen.unfingerprinted) == (keyed, unfingerprinted)
    assert list(seen.key_groups.items()) == list(groups.items()) and groups

    accepted: Counter[tuple[str, int]] = Counter()  # rate-limit-enforced
    limited = 0
    refused: list[tuple[str, int, int, int]] = []
    for invoke, completion in history.pairs():
        if invoke.process == NEMESIS or invoke.f == "webhook.deliver" or invoke.tenant is None:
            continue
        if completion is None or completion.status is None:
            continue
        if completion.status == 429:
            limited += 1
            if invoke.f != "call.submit" and not invoke.f.startswith("probe."):
                refused.append((invoke.tenant, invoke.time_ns, completion.time_ns, completion.index))
            continue
        accepted[(invoke.tenant, completion.time_ns // 1_000_000_000)] += 1
    assert (seen.accepted, seen.limited, seen.refused) == (accepted, limited, refused) and refused


def test_an_unreadable_id_makes_only_tenant_isolation_unknown() -> None:
    """An unhashable row id crashed tenant-isolation's own walk; in the shared pass it must not crash the others."""
    ops = [Op(0, "invoke", "p1", "appointment.read", "c1", {"appointment_id": {"nested": "x"}}, time_ns=1),
           Op(1, "ok", "p1", "appointment.read", "c1", {"appointment_id": {"nested": "x"}}, 200, {}, None, 2, 0.0, 0)]
    snapshot = Snapshot(appointments=({"id": "a1", "company_id": "c1"},))
    verdicts = {v.invariant: v for v in check_all(History(ops), snapshot)}
    assert verdicts["tenant-isolation"].status == "unknown"
    assert "unhashable" in (verdicts["tenant-isolation"].error or "")
    assert [name for name, v in verdicts.items() if "crashed" in (v.error or "")] == ["tenant-isolation"]
