"""Process faults on a real child process (a tiny TCP echo server)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from stormproof.harness.faults import KillFault, ManagedProcess, PauseFault, ProcessFaultError, kill_and_restart, pause, resume

ECHO = r"""
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(16)
print("ready", flush=True)
srv.settimeout(60)
for _ in range(10000):
    conn, _ = srv.accept()
    conn.settimeout(30)
    with conn:
        for _ in range(100000):
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
"""


class EchoProcess:
    """Implements ManagedProcess with subprocess, as the stack module would."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def start(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", ECHO, str(self.port)], stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None and self._proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(subprocess.signal.SIGCONT)
            self._proc.terminate()
            self._proc.wait(5)

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)


@pytest.fixture
def echo_proc():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = EchoProcess("echo", port)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def echo_once(port: int, timeout: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"hi")
        return sock.recv(10)


def test_protocol_is_satisfied(echo_proc: EchoProcess) -> None:
    assert isinstance(echo_proc, ManagedProcess)


def test_kill_and_restart_changes_pid_and_serves(echo_proc: EchoProcess) -> None:
    before = echo_proc.pid
    old, new = kill_and_restart(echo_proc, downtime=0.05)
    assert old == before and new != old and echo_proc.pid == new
    assert echo_once(echo_proc.port) == b"hi"


def test_pause_stops_progress_and_resume_restores(echo_proc: EchoProcess) -> None:
    assert echo_once(echo_proc.port) == b"hi"
    pid = pause(echo_proc)
    try:
        with pytest.raises(socket.timeout):
            echo_once(echo_proc.port, timeout=0.3)  # kernel accepts, process cannot answer
        with open(f"/proc/{pid}/stat") as stat:
            assert stat.read().split(") ", 1)[1][0] == "T"  # stopped
    finally:
        resume(pid)
    assert echo_once(echo_proc.port) == b"hi"


def test_faults_refuse_a_process_that_is_not_running(echo_proc: EchoProcess) -> None:
    echo_proc.kill()
    with pytest.raises(ProcessFaultError):
        pause(echo_proc)
    with pytest.raises(ProcessFaultError):
        kill_and_restart(echo_proc)
    with pytest.raises(ProcessFaultError):
        resume(1)


def test_kill_and_pause_packages_heal(echo_proc: EchoProcess) -> None:
    kill = KillFault({"echo": echo_proc})
    handle = kill.start("echo", {})
    assert echo_proc.pid is None
    kill.stop(handle)
    assert echo_once(echo_proc.port) == b"hi"

    paused = PauseFault({"echo": echo_proc})
    paused.start("echo", {})
    time.sleep(0.05)
    paused.heal()  # the final step resumes even without stop
    assert echo_once(echo_proc.port) == b"hi"
    kill.start("echo", {})
    kill.heal()
    assert echo_proc.pid is not None and echo_once(echo_proc.port) == b"hi"
