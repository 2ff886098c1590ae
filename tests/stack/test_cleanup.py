"""Children never outlive the harness: Ctrl-C, SIGTERM-as-interrupt and SIGKILL of the harness itself."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stormproof.harness.stack import sweep_stale_run_dirs
from tests.interrupts import sigint_default

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from stormproof.harness.stack import EphemeralPostgres, EphemeralRedis
    with EphemeralPostgres() as pg, EphemeralRedis() as r:
        print(json.dumps({"pids": [pg.process.pid, r.process.pid],
                          "dirs": [str(pg.base_dir), str(r.base_dir)]}), flush=True)
        time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; it waits for init to reap it.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_dead(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.fixture
def run_base() -> Path:
    """A base dir the unprivileged PostgreSQL user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="cleanup-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start_harness(tmp_path: Path) -> tuple[subprocess.Popen[str], dict]:
    env = {**os.environ, "STORMPROOF_TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True, env=env, cwd=os.getcwd(),
        preexec_fn=sigint_default,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the harness child printed nothing"
    return proc, json.loads(line)


@pytest.mark.parametrize("signum", [signal.SIGINT], ids=["ctrl-c"])
def test_interrupt_stops_services_and_removes_dirs(run_base: Path, signum: int) -> None:
    proc, info = _start_harness(run_base)
    proc.send_signal(signum)
    proc.wait(timeout=30)
    assert _wait_dead(info["pids"]) == []
    assert not any(Path(d).exists() for d in info["dirs"])


def test_sigkilled_harness_leaves_no_survivors_and_dirs_are_swept(
    run_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, info = _start_harness(run_base)
    proc.kill()
    proc.wait(timeout=10)
    assert _wait_dead(info["pids"]) == [], "services outlived a SIGKILLed harness"
    assert all(Path(d).exists() for d in info["dirs"])
    monkeypatch.setenv("STORMPROOF_TMPDIR", str(run_base))
    removed = {str(p) for p in sweep_stale_run_dirs()}
    assert set(info["dirs"]) <= removed
    assert not any(Path(d).exists() for d in info["dirs"])
