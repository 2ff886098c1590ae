"""Generated concurrent histories: a correct model must pass, a buggy one must be caught.

The model (tests/invariants/model.py) applies each operation at a random
point between invoke and completion and loses some answers (info), so these
histories exercise the checkers' real-time reasoning: a correct server is
never flagged, however the operations interleave.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from stormproof.harness.history import History
from stormproof.harness.invariants import check_all
from tests.invariants.model import generate

CHECKED = ["single-active-session", "single-assignment", "no-lost-acknowledged-write", "idempotent-replay",
           "tenant-isolation"]
seeds = st.integers(0, 2**32 - 1)
sizes = st.integers(5, 60)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(seeds, sizes, st.integers(1, 6), st.sampled_from([0.0, 0.15, 0.4]))
def test_correct_server_histories_are_valid(seed: int, n_ops: int, processes: int, info_rate: float) -> None:
    run = generate(seed, n_ops=n_ops, processes=processes, info_rate=info_rate)
    for verdict in check_all(run.history, run.snapshot, CHECKED):
        if verdict.status == "unknown":  # a short history may exercise nothing: said so, never valid
            assert (verdict.error or "").startswith("not exercised: "), (verdict.invariant, verdict.error)
            continue
        assert verdict.status == "valid", (verdict.invariant, [v.message for v in verdict.violations])


def _certain_session_overlap(history: History) -> bool:
    """Brute force, O(n^2): two acknowledged sessions of one appointment certainly active together."""
    acks: dict[str, tuple[tuple, int, int]] = {}
    for invoke, completion in history.pairs():
        if invoke.f == "session.start" and completion is not None and completion.type == "ok":
            sid = completion.result["id"]
            if sid not in acks or completion.time_ns < acks[sid][2]:
                acks[sid] = ((invoke.tenant, invoke.args["appointment_id"]), invoke.time_ns, completion.time_ns)
    stops = defaultdict(list)
    for invoke, completion in history.pairs():
        if invoke.f == "session.stop" and (completion is None or completion.type != "fail"):
            done = completion.time_ns if completion is not None and completion.type == "ok" else float("inf")
            stops[invoke.args["session_id"]].append((invoke.time_ns, done))
    lives = {}
    for sid, (key, began, acked) in acks.items():
        end = min([inv for inv, done in stops[sid] if done > began], default=float("inf"))
        lives[sid] = (key, acked, end)
    return any(k1 == k2 and s1 != s2 and max(a1, a2) < min(e1, e2)
               for s1, (k1, a1, e1) in lives.items() for s2, (k2, a2, e2) in lives.items())


@settings(derandomize=True, max_examples=120, deadline=None)
@given(seeds, sizes)
def test_double_start_bug_matches_brute_force(seed: int, n_ops: int) -> None:
    run = generate(seed, n_ops=n_ops, bug="double-start")
    (verdict,) = check_all(run.history, run.snapshot, ["single-active-session"])
    active = defaultdict(int)
    for row in run.snapshot.recording_sessions or ():
        if row["status"] == "recording":
            active[row["appointment_id"]] += 1
    history_flags = any(v.details["type"] == "history" for v in verdict.violations)
    final_flags = any(v.details["type"] == "final-state" for v in verdict.violations)
    assert history_flags == _certain_session_overlap(run.history)
    assert final_flags == any(count > 1 for count in active.values())


@settings(derandomize=True, max_examples=120, deadline=None)
@given(seeds, sizes)
def test_double_assign_bug_is_caught_in_the_final_state(seed: int, n_ops: int) -> None:
    run = generate(seed, n_ops=n_ops, bug="double-assign")
    (verdict,) = check_all(run.history, run.snapshot, ["single-assignment"])
    per_appointment = defaultdict(int)
    for row in run.snapshot.appointment_assignments or ():
        if row["status"] == "active":
            per_appointment[row["appointment_id"]] += 1
    if any(count > 1 for count in per_appointment.values()):
        assert verdict.status == "invalid"
    if not run.bug_manifested:
        assert verdict.status == "valid"


@settings(derandomize=True, max_examples=120, deadline=None)
@given(seeds, sizes)
def test_lost_stop_bug_is_always_caught(seed: int, n_ops: int) -> None:
    run = generate(seed, n_ops=n_ops, bug="lost-stop", info_rate=0.15)
    (verdict,) = check_all(run.history, run.snapshot, ["no-lost-acknowledged-write"])
    assert (verdict.status == "invalid") == run.bug_manifested


@settings(derandomize=True, max_examples=120, deadline=None)
@given(seeds, sizes)
def test_no_idempotency_bug_flagged_whenever_two_answers_show_it(seed: int, n_ops: int) -> None:
    run = generate(seed, n_ops=n_ops, bug="no-idempotency", info_rate=0.1)
    (verdict,) = check_all(run.history, run.snapshot, ["idempotent-replay"])
    fresh_ok = defaultdict(int)
    for invoke, completion in run.history.pairs():
        if completion is not None and completion.type == "ok" and not completion.result.get("replayed"):
            fresh_ok[(invoke.tenant, invoke.args.get("idempotency_key"))] += 1
    shown = any(count > 1 for key, count in fresh_ok.items() if key[1] is not None)
    # A stored refusal (the model's 404) shows it too: the same request sent after it came back ran again.
    stored = defaultdict(list)
    for invoke, completion in run.history.pairs():
        key, fp = invoke.args.get("idempotency_key"), invoke.args.get("payload_fp")
        if key is not None and fp is not None and completion is not None and (
                completion.type == "ok" or completion.status == 404):
            stored[(invoke.tenant, key, invoke.f, fp)].append((invoke, completion))
    for members in stored.values():
        if all(c.type == "ok" for _, c in members):
            continue
        first = min((completion for _, completion in members), key=lambda op: (op.time_ns, op.index))
        shown = shown or any(i.time_ns > first.time_ns and not c.result.get("replayed")
                             and not (first.type == "ok" and c.type == "ok") for i, c in members)
    assert (verdict.status == "invalid") == shown


def test_bugs_do_manifest_and_get_caught_in_the_generated_runs() -> None:
    """Guard against a model whose bugs never fire (which would make the tests above vacuous)."""
    caught = defaultdict(int)
    for seed in range(40):
        for bug, name in (("double-start", "single-active-session"), ("double-assign", "single-assignment"),
                          ("no-idempotency", "idempotent-replay"), ("lost-stop", "no-lost-acknowledged-write")):
            run = generate(seed, bug=bug)
            (verdict,) = check_all(run.history, run.snapshot, [name])
            caught[bug] += verdict.status == "invalid"
    assert all(count >= 5 for count in caught.values()), dict(caught)
