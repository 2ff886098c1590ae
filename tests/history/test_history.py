import pytest

from stormproof.harness.history import History, HistoryError, Op, outcome


def _ops() -> list[Op]:
    return [
        Op(0, "invoke", "p1", "session.start", "c1", {"appointment_id": "a"}, time_ns=0),
        Op(1, "invoke", "nemesis", "fault", None, {"fault": "latency", "phase": "start"}, time_ns=1),
        Op(2, "ok", "nemesis", "fault", None, {"fault": "latency", "phase": "start"}, time_ns=2, invoke_index=1),
        Op(3, "invoke", "p2", "session.start", "c1", {"appointment_id": "b"}, time_ns=3),
        Op(4, "ok", "p1", "session.start", "c1", {"appointment_id": "a"}, 201, {"id": "s"}, time_ns=4,
           invoke_index=0),
    ]


def test_pairs_and_views() -> None:
    history = History(_ops())
    pairs = history.pairs()
    assert [(i.index, c.index if c else None) for i, c in pairs] == [(0, 4), (1, 2), (3, None)]
    assert [outcome(p) for p in pairs] == ["ok", "ok", "info"]  # never completed: unknown
    assert [p[0].index for p in history.pairs_of("session.start")] == [0, 3]
    assert [p[0].index for p in history.pairs_of("fault", "session.start")] == [0, 1, 3]
    assert [op.index for op in history.by_f("session.start")] == [0, 3, 4]
    assert [op.index for op in history.faults()] == [1]
    assert history.completion(history[0]) is history[4]
    assert history.invoke_of(history[4]) is history[0]
    assert history.fs == {"session.start", "fault"}
    assert len(history) == 5 and list(history)[2].index == 2


@pytest.mark.parametrize(
    "bad",
    [
        [Op(1, "invoke", "p", "f")],  # index is not the position
        [Op(0, "ok", "p", "f", invoke_index=None)],  # completion without invoke
        [Op(0, "invoke", "p", "f"), Op(1, "ok", "p", "g", invoke_index=0)],  # other operation
        [Op(0, "invoke", "p", "f"), Op(1, "ok", "p", "f", invoke_index=0), Op(2, "info", "p", "f", invoke_index=0)],
        [Op(0, "invoke", "p", "f"), Op(1, "ok", "p", "f", invoke_index=2), Op(2, "invoke", "p", "f")],
    ],
)
def test_malformed_histories_are_refused(bad: list[Op]) -> None:
    with pytest.raises(HistoryError):
        History(bad)


def test_acknowledged_of_and_a_one_operation_mix_equal_the_merged_filter() -> None:
    """``acknowledged_of`` (shared, session 11) is the ok pairs of ``pairs_of``; a mix of which only one
    operation was sent is that operation's pairs, no sort needed; the shared results are built once."""
    import random

    from stormproof.harness.history import Op

    rng = random.Random(3)
    ops: list[Op] = []
    open_: list[int] = []
    for _ in range(300):
        if open_ and rng.random() < 0.5:
            invoke = ops[open_.pop(rng.randrange(len(open_)))]
            kind = rng.choice(("ok", "ok", "fail", "info"))
            ops.append(Op(len(ops), kind, invoke.process, invoke.f, "c1", invoke.args, 200 if kind == "ok" else 500,
                          {}, None, len(ops), 0.0, invoke.index))
        else:
            ops.append(Op(len(ops), "invoke", "p1", rng.choice(("a", "b", "c")), "c1", {}, time_ns=len(ops)))
            open_.append(len(ops) - 1)
    history = History(ops)
    for fs in (("a",), ("a", "b"), ("b", "a"), ("a", "missing"), ("missing",), ("missing", "c"), ("a", "b", "c")):
        merged = sorted((pair for pair in history.pairs() if pair[0].f in fs), key=lambda pair: pair[0].index)
        assert history.pairs_of(*fs) == merged, fs
        assert list(history.acknowledged_of(*fs)) == [p for p in merged if p[1] is not None and p[1].type == "ok"]
        assert history.acknowledged_of(*fs) is history.acknowledged_of(*fs)
    assert history.pairs_of("a", "missing") is not history.pairs_of("a", "missing")  # a copy each call
