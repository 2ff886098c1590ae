"""The fault layer's process faults act on the stack's real services, by PID."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from stormproof.harness.faults.process import ManagedProcess as FaultTarget
from stormproof.harness.faults.process import kill_and_restart, pause, resume
from stormproof.harness.stack import EphemeralPostgres, EphemeralRedis, ManagedProcess


def test_stack_processes_satisfy_the_fault_protocol() -> None:
    with EphemeralRedis() as server:
        assert isinstance(server.process, FaultTarget)
        assert isinstance(server.process, ManagedProcess)


def test_killing_redis_loses_its_locks_and_it_comes_back_on_the_same_port() -> None:
    with EphemeralRedis() as server:
        server.client().set("shunya_job:abc", "token", px=60_000)
        old, new = kill_and_restart(server.process)
        assert old != new
        client = server.client()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    break
            except Exception:  # noqa: BLE001 - still starting
                time.sleep(0.02)
        assert client.get("shunya_job:abc") is None


def test_paused_redis_makes_no_progress_until_resumed() -> None:
    with EphemeralRedis() as server:
        pid = pause(server.process)
        client = server.client()
        client.connection_pool.connection_kwargs["socket_timeout"] = 0.3
        try:
            client.ping()
            raise AssertionError("a paused Redis answered")
        except Exception as exc:  # noqa: BLE001
            assert "Timeout" in type(exc).__name__ or "timed out" in str(exc)
        resume(pid)
        assert server.client().ping()


def test_postgres_killed_and_restarted_recovers_committed_data(stormproof_postgres: EphemeralPostgres) -> None:
    with EphemeralPostgres() as pg:
        pg.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
        kill_and_restart(pg.process)
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(pg.dsn(), connect_timeout=1) as conn:
                    assert conn.execute("SELECT x FROM t").fetchone() == (7,)
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, "PostgreSQL did not recover"
                time.sleep(0.1)


def test_stop_of_a_paused_process_is_prompt() -> None:
    with EphemeralRedis() as server:
        pause(server.process)
        started = time.monotonic()
        server.process.stop()
        assert server.process.pid is None
        assert time.monotonic() - started < server.process.stop_timeout


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _reaches(pid: int, stopped: bool) -> bool:
    """Signals are delivered asynchronously: wait (boundedly) for the state to follow."""
    deadline = time.monotonic() + 5
    while (_state(pid) == "T") != stopped:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_pause_freezes_the_children_of_a_service_too(tmp_path: Path) -> None:
    """An app of several uvicorn workers serves from its children: pausing the parent alone would not pause it."""
    proc = ManagedProcess("tree", ["sh", "-c", "sleep 60 & echo $! > child.pid; wait"], log_path=tmp_path / "log",
                          cwd=tmp_path)
    proc.start()
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "child.pid").read_text().strip() if (tmp_path / "child.pid").exists() else True:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        child = int((tmp_path / "child.pid").read_text())
        for pausing in (proc.pause, lambda: pause(proc)):
            pausing()
            assert _reaches(proc.pid, stopped=True) and _reaches(child, stopped=True), "the child kept running"
            proc.resume() if pausing is proc.pause else resume(proc.pid)
            assert _reaches(child, stopped=False) and _reaches(proc.pid, stopped=False), "the child stayed stopped"
    finally:
        proc.stop()
    assert proc.pid is None
