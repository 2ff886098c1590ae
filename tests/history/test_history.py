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
