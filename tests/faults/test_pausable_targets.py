"""Process fault packages on targets that pause themselves (containers): no PID is signalled here."""

from __future__ import annotations

from stormproof.harness.faults.process import KillFault, Pausable, PauseFault


class FakeContainer:
    """What ``stormproof.harness.stack.containers.ContainerProcess`` offers, recorded (its pid is above any pid_max)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.running = True
        self.calls: list[str] = []

    @property
    def pid(self) -> int | None:
        return 4_194_311 if self.running else None

    def start(self) -> None:
        self.calls.append("start")
        self.running = True

    def stop(self) -> None:
        self.running = False

    def kill(self) -> None:
        self.calls.append("kill")
        self.running = False

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


def test_a_pausable_target_is_paused_and_resumed_through_its_own_methods() -> None:
    app = FakeContainer("app")
    assert isinstance(app, Pausable)
    pause = PauseFault({"app": app})
    handle = pause.start("app", {})
    assert handle == ("app", None) and app.calls == ["pause"]
    pause.stop(handle)
    assert app.calls == ["pause", "resume"]
    pause.heal()  # nothing left paused: nothing resumed twice
    assert app.calls == ["pause", "resume"]


def test_heal_resumes_whatever_is_still_paused() -> None:
    app, worker = FakeContainer("app"), FakeContainer("worker1")
    pause = PauseFault({"app": app, "worker1": worker})
    pause.start("app", {})
    pause.start("worker1", {})
    pause.heal()
    assert app.calls == ["pause", "resume"] and worker.calls == ["pause", "resume"]


def test_kill_then_stop_restarts_a_container_target() -> None:
    redis = FakeContainer("redis")
    kill = KillFault({"redis": redis})
    handle = kill.start("redis", {})
    assert redis.pid is None
    kill.stop(handle)
    assert redis.calls == ["kill", "start"] and redis.pid == 4_194_311
