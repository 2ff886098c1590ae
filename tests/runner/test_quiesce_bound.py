"""The bound of the wait for quiescence, on a simulated clock: it scales with the work and its progress.

No services: ``observe`` is replaced by a scripted system, ``clock``/``sleep`` by a fake clock.
"""

from __future__ import annotations

import pytest

from stormproof.harness.runner import quiesce as q
from stormproof.harness.runner.quiesce import BrokerView, Observation, QuiescePolicy

POLICY = QuiescePolicy(base_s=5, per_item_s=0.5, stall_s=15, cap_s=300, confirm_s=3, interval_s=0.5)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def _system(clock: Clock, backlog_at, *, in_broker: bool = True):  # type: ignore[no-untyped-def]
    """A system whose in-flight tasks at time t are ``backlog_at(t)`` (each with a broker message if in_broker)."""
    def observe(dsn: str, redis_url: str | None, stub_url: str | None, redeliver_s: float | None = None) -> Observation:
        n = backlog_at(clock.t)
        ids = frozenset(f"t{i}" for i in range(n))
        finished = 1000 - n
        broker = BrokerView(ids if in_broker else frozenset(), len(ids) if in_broker else 0, None)
        return Observation(ids, finished, finished, broker, 0, 0)
    return observe


def _run(monkeypatch: pytest.MonkeyPatch, backlog_at, **kwargs):  # type: ignore[no-untyped-def]
    clock = Clock()
    monkeypatch.setattr(q, "observe", _system(clock, backlog_at, **kwargs))
    return q.quiesce("dsn", "redis://x", None, POLICY, clock=clock, sleep=clock.sleep)


def test_a_backlog_that_keeps_draining_is_waited_for_past_its_first_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # 150 tasks, one done every 0.5 s: 75 s, far past a fixed 30 s and past the initial 80 s bound's start.
    outcome = _run(monkeypatch, lambda t: max(0, 150 - int(t * 2)))
    assert outcome.quiet and 74 <= outcome.waited_s <= 77, outcome


def test_a_slow_but_steady_drain_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10 tasks, one every 12 s (less than the 15 s stall window): 120 s, twelve times the initial 10 s bound.
    outcome = _run(monkeypatch, lambda t: max(0, 10 - int(t / 12)))
    assert outcome.quiet and 119 <= outcome.waited_s <= 122, outcome


def test_nothing_moving_stops_after_the_stall_window_as_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = _run(monkeypatch, lambda t: 5)
    assert not outcome.quiet and outcome.pending == 5 and not outcome.lost_tasks
    assert 15 <= outcome.waited_s <= 16
    assert outcome.reason.startswith("not quiet after 15 s: 5 tasks still progressing (nothing moved for 15 s)")


def test_progress_that_never_ends_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    # Something moves every 5 s forever (the backlog flips between 40 and 41): the hard cap ends it.
    outcome = _run(monkeypatch, lambda t: 40 + int(t / 5) % 2)
    assert not outcome.quiet and 300 <= outcome.waited_s <= 301
    assert "expired" in outcome.reason and outcome.backlog in (40, 41)


def test_ledger_rows_without_broker_messages_are_lost_after_the_confirm_window(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = _run(monkeypatch, lambda t: 3, in_broker=False)
    assert not outcome.quiet and outcome.lost_tasks == frozenset({"t0", "t1", "t2"}) and outcome.pending == 0
    assert 3 <= outcome.waited_s <= 4, "lost work alone ends the wait once confirmed"
    assert "3 tasks lost" in outcome.reason


def test_a_retry_due_later_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """One task whose retry is due in 40 s (its message has an ETA): nothing moves, but it is planned movement."""
    import time

    clock = Clock()
    due = time.time() + 40

    def observe(dsn: str, redis_url: str | None, stub_url: str | None, redeliver_s: float | None = None) -> Observation:
        if clock.t < 41:
            return Observation(frozenset({"r1"}), 0, 1, BrokerView(frozenset({"r1"}), 1, due), 0, 0)
        return Observation(frozenset(), 1, 2, BrokerView(frozenset(), 0, None), 0, 0)

    monkeypatch.setattr(q, "observe", observe)
    outcome = q.quiesce("dsn", "redis://x", None, POLICY, clock=clock, sleep=clock.sleep)
    assert outcome.quiet and 41 <= outcome.waited_s <= 42, outcome


def test_a_task_its_outbox_will_publish_again_is_waited_for_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay's process restarts after a kill: 3 tasks have outbox rows but no broker message for 20 s.

    Without the outbox as a witness they would be called lost after the 3 s confirm window (a false
    alarm with every fix on); with it they are pending, and the wait sees them published and finished.
    """
    clock = Clock()
    ids = frozenset({"o1", "o2", "o3"})

    def observe(dsn: str, redis_url: str | None, stub_url: str | None, redeliver_s: float | None = None) -> Observation:
        if clock.t < 10:  # the relay is down: rows, no messages
            return Observation(ids, 0, 3, BrokerView(frozenset(), 0, None), 0, 0, ids)
        if clock.t < 20:  # published, running
            return Observation(ids, 0, 3, BrokerView(ids, 3, None), 0, 0, ids)
        return Observation(frozenset(), 3, 3, BrokerView(frozenset(), 0, None), 0, 0)

    monkeypatch.setattr(q, "observe", observe)
    outcome = q.quiesce("dsn", "redis://x", None, POLICY, clock=clock, sleep=clock.sleep)
    assert outcome.quiet and 20 <= outcome.waited_s <= 21, outcome


def test_an_outbox_row_due_later_is_planned_movement(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next poll of a job is re-armed in the outbox for 40 s ahead: nothing moves, but it is waited for."""
    import time

    clock = Clock()
    due = time.time() + 40

    def observe(dsn: str, redis_url: str | None, stub_url: str | None, redeliver_s: float | None = None) -> Observation:
        if clock.t < 41:
            return Observation(frozenset({"p1"}), 0, 1, BrokerView(frozenset(), 0, None), 0, 0,
                               frozenset({"p1"}), due)
        return Observation(frozenset(), 1, 2, BrokerView(frozenset(), 0, None), 0, 0)

    monkeypatch.setattr(q, "observe", observe)
    outcome = q.quiesce("dsn", "redis://x", None, POLICY, clock=clock, sleep=clock.sleep)
    assert outcome.quiet and 41 <= outcome.waited_s <= 42, outcome


def test_an_outbox_row_due_past_the_cap_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row due tomorrow (the seed's disposable company's) beside a task that never moves: the wait cannot
    reach the row's due time, so it stops after the stall window (pending), not at the 300 s cap."""
    import time

    clock = Clock()
    tomorrow = time.time() + 86_400

    def observe(dsn: str, redis_url: str | None, stub_url: str | None, redeliver_s: float | None = None) -> Observation:
        return Observation(frozenset({"t1"}), 0, 1, BrokerView(frozenset({"t1"}), 1, None), 0, 0,
                           frozenset({"later"}), tomorrow)

    monkeypatch.setattr(q, "observe", observe)
    outcome = q.quiesce("dsn", "redis://x", None, POLICY, clock=clock, sleep=clock.sleep)
    assert not outcome.quiet and 15 <= outcome.waited_s <= 16, outcome


def test_a_task_with_neither_message_nor_outbox_row_is_still_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The weakening ``outbox`` writes no rows: a task the broker lost stays lost (the witness hides nothing)."""
    clock = Clock()

    def observe(dsn: str, redis_url: str | None, stub_url: str | None, redeliver_s: float | None = None) -> Observation:
        return Observation(frozenset({"l1", "o1"}), 0, 2, BrokerView(frozenset(), 0, None), 0, 0,
                           frozenset({"o1"}))

    monkeypatch.setattr(q, "observe", observe)
    outcome = q.quiesce("dsn", "redis://x", None, POLICY, clock=clock, sleep=clock.sleep)
    assert not outcome.quiet and outcome.lost_tasks == frozenset({"l1"}) and outcome.pending == 1


SWEEPING = QuiescePolicy(base_s=5, per_item_s=0.5, stall_s=15, cap_s=300, confirm_s=3, interval_s=0.5,
                         redeliver_s=5.0, sweep_slack_s=5.0)


def test_an_outbox_row_its_sweeper_never_publishes_again_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Published at 0 and never begun (the broker lost its message), due for its sweep at 5 s: with no sweep by
    10 s (the slack, at least one bound) it is lost, not pending, and said so; with no bound given (another
    backend's outbox) the same row stays pending."""
    clock = Clock()
    asked: list[float | None] = []

    def observe(dsn: str, redis_url: str | None, stub_url: str | None, redeliver_s: float | None = None) -> Observation:
        asked.append(redeliver_s)
        sweeps = {"o1": clock.t - 5.0} if redeliver_s is not None else {}
        return Observation(frozenset({"o1"}), 0, 1, BrokerView(frozenset(), 0, None), 0, 0, frozenset({"o1"}),
                           None, sweeps)

    monkeypatch.setattr(q, "observe", observe)
    outcome = q.quiesce("dsn", "redis://x", None, SWEEPING, clock=clock, sleep=clock.sleep)
    assert asked[0] == 5.0
    assert not outcome.quiet and outcome.lost_tasks == frozenset({"o1"}), outcome
    assert "not published again by the sweeper" in outcome.reason
    assert 13 <= outcome.waited_s <= 15, outcome  # 10 s to be past the slack, 3 s to confirm
    clock.t = 0.0
    outcome = q.quiesce("dsn", "redis://x", None, POLICY, clock=clock, sleep=clock.sleep)
    assert not outcome.quiet and not outcome.lost_tasks and outcome.pending == 1, outcome


def test_a_sweep_due_later_is_waited_for_and_a_row_swept_in_time_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row published again and again unbegun waits 40 s (the bound doubled three times) for its sweep: past the
    15 s stall window, that wait is planned movement. Swept at 44 s (within the slack), then run: quiet."""
    clock = Clock()

    def observe(dsn: str, redis_url: str | None, stub_url: str | None, redeliver_s: float | None = None) -> Observation:
        if clock.t < 44:
            return Observation(frozenset({"o1"}), 0, 1, BrokerView(frozenset(), 0, None), 0, 0, frozenset({"o1"}),
                               None, {"o1": clock.t - 40.0})
        if clock.t < 46:
            return Observation(frozenset({"o1"}), 0, 1, BrokerView(frozenset({"o1"}), 1, None), 0, 0,
                               frozenset({"o1"}), None, {"o1": -5.0})
        return Observation(frozenset(), 1, 2, BrokerView(frozenset(), 0, None), 0, 0)

    monkeypatch.setattr(q, "observe", observe)
    outcome = q.quiesce("dsn", "redis://x", None, SWEEPING, clock=clock, sleep=clock.sleep)
    assert outcome.quiet and 46 <= outcome.waited_s <= 47, outcome


def test_the_sweep_rule_is_the_reference_apps() -> None:
    """Quiescence reads the outbox by docs/API.md's rule; the reference app's sweeper implements the same one."""
    from stormproof.reference_app.services import outbox

    assert q.SWEEP_DOUBLINGS == outbox.SWEEP_DOUBLINGS
    assert q.OUTBOX_LOCK_CLASS == outbox._LOCK_CLASS
