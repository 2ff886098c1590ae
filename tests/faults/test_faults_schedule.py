"""Fault schedules: parsing, seeded randomness, ordering, and guaranteed heal."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from stormproof.harness.faults import FaultEvent, FaultSpec, ProxyInfo, Schedule, ToxiproxyClient, run_schedule, standard_packages


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return False


class Recorder:
    """A package that logs calls; optionally fails on its Nth start."""

    def __init__(self, log: list[str], fail_on_start: int | None = None) -> None:
        self.log = log
        self.fail_on_start = fail_on_start
        self.starts = 0

    def start(self, target: str, params: Mapping[str, Any]) -> str:
        self.starts += 1
        if self.starts == self.fail_on_start:
            raise RuntimeError("injection failed")
        self.log.append(f"start {target}")
        return target

    def stop(self, handle: object) -> None:
        self.log.append(f"stop {handle}")

    def heal(self) -> None:
        self.log.append("heal")


def test_spec_from_dict_and_validation() -> None:
    spec = FaultSpec.from_dict({"at": 2.0, "duration": 3.0, "fault": "latency", "target": "app",
                                "params": {"latency": 200, "jitter": 50}})
    assert (spec.at, spec.end, spec.fault, spec.target, dict(spec.params)) == (2.0, 5.0, "latency", "app",
                                                                            {"latency": 200, "jitter": 50})
    assert FaultSpec.from_dict(spec.to_dict()) == spec
    for bad in ({"at": -1, "duration": 1, "fault": "x", "target": "t"},
                {"at": 0, "duration": 0, "fault": "x", "target": "t"},
                {"at": 0, "duration": float("inf"), "fault": "x", "target": "t"},
                {"at": "soon", "duration": 1, "fault": "x", "target": "t"},
                {"at": 0, "duration": 1, "fault": "", "target": "t"},
                {"at": 0, "duration": 1, "fault": "x", "target": "t", "when": 3}):
        with pytest.raises(ValueError):
            FaultSpec.from_dict(bad)
    with pytest.raises(ValueError):
        Schedule.from_dicts([{"at": 0, "duration": 1e9, "fault": "x", "target": "t"}])


def test_random_schedule_is_reproducible_and_bounded() -> None:
    templates = [{"fault": "latency", "target": ["a", "b"], "params": {"latency": 100}},
                 {"fault": "down", "target": "a"}]
    kwargs = dict(horizon=30.0, count=8, min_duration=0.5, max_duration=4.0)
    first = Schedule.random(7, templates, **kwargs)
    assert first == Schedule.random(7, templates, **kwargs)
    assert first != Schedule.random(8, templates, **kwargs)
    assert len(first.faults) == 8 and first.end <= 30.0
    assert [f.at for f in first.faults] == sorted(f.at for f in first.faults)
    assert Schedule.from_dicts(first.to_dicts()) == first


def test_run_records_start_and_stop_in_time_order() -> None:
    log: list[str] = []
    events: list[FaultEvent] = []
    clock = FakeClock()
    schedule = Schedule.from_dicts([
        {"at": 1.0, "duration": 2.0, "fault": "f", "target": "a", "params": {"k": 1}},
        {"at": 3.0, "duration": 1.0, "fault": "f", "target": "b"},
    ])
    run_schedule(schedule, {"f": Recorder(log)}, events.append, clock=clock, wall=lambda: 5e9, wait=clock.wait)
    assert log == ["start a", "stop a", "start b", "stop b", "heal"]
    assert [(e.phase, e.target, e.monotonic - 100.0) for e in events] == [
        ("start", "a", 1.0), ("stop", "a", 3.0), ("start", "b", 3.0), ("stop", "b", 4.0), ("stop", "*", 4.0)]
    assert all(e.kind == "fault" and e.fault == "f" and e.wall == 5e9 for e in events)
    assert events[0].params == {"k": 1} and events[-1].params == {"final": True}


def test_heal_runs_when_a_fault_fails() -> None:
    log: list[str] = []
    events: list[FaultEvent] = []
    clock = FakeClock()
    schedule = Schedule.from_dicts([
        {"at": 0.0, "duration": 10.0, "fault": "f", "target": "a"},
        {"at": 1.0, "duration": 1.0, "fault": "f", "target": "b"},
    ])
    with pytest.raises(RuntimeError, match="injection failed"):
        run_schedule(schedule, {"f": Recorder(log, fail_on_start=2)}, events.append, clock=clock, wait=clock.wait)
    assert log == ["start a", "stop a", "heal"]
    assert [(e.phase, e.target) for e in events] == [("start", "a"), ("stop", "a"), ("stop", "*")]


def test_stop_event_interrupts_and_heals() -> None:
    log: list[str] = []
    stop = threading.Event()
    schedule = Schedule.from_dicts([{"at": 0.0, "duration": 30.0, "fault": "f", "target": "a"}])
    timer = threading.Timer(0.1, stop.set)
    timer.start()
    run_schedule(schedule, {"f": Recorder(log)}, lambda e: None, stop=stop)
    timer.join()
    assert log == ["start a", "stop a", "heal"]


def test_unknown_fault_is_rejected_before_running() -> None:
    with pytest.raises(KeyError):
        run_schedule(Schedule.from_dicts([{"at": 0, "duration": 1, "fault": "zap", "target": "a"}]), {}, print)


def test_network_faults_against_the_proxy(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    """Real packages on a real server: faults visible mid-run, all gone after."""
    seen: list[tuple[str, str, int, bool]] = []

    def record(event: FaultEvent) -> None:
        info = client.get_proxy("echo")
        seen.append((event.fault, event.phase, len(info.toxics), info.enabled))

    schedule = Schedule.from_dicts([
        {"at": 0.0, "duration": 0.1, "fault": "latency", "target": "echo", "params": {"latency": 200, "jitter": 50}},
        {"at": 0.0, "duration": 0.1, "fault": "timeout", "target": "echo",
         "params": {"timeout": 0, "stream": "upstream"}},
        {"at": 0.15, "duration": 0.1, "fault": "down", "target": "echo"},
    ])
    run_schedule(schedule, standard_packages(client), record)
    assert ("latency", "start", 1, True) in seen and ("timeout", "start", 2, True) in seen
    assert ("down", "start", 0, False) in seen
    final = client.get_proxy("echo")
    assert final.enabled and final.toxics == ()
