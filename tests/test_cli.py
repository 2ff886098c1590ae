"""The ``stormproof`` command as a newcomer runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import httpx
import pytest

from tests.interrupts import sigint_default

STORMPROOF = shutil.which("stormproof", path=os.path.dirname(sys.executable)) or "stormproof"


def test_up_serves_the_app_and_sigterm_cleans_up() -> None:
    proc = subprocess.Popen(
        [STORMPROOF, "up", "--json", "--tenants", "2", "--appointments", "2", "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        tenant = info["tenants"][0]
        headers = {"Authorization": f"Bearer {tenant['manager_token']}", "Idempotency-Key": "cli-test"}
        started = httpx.post(
            f"{info['app_url']}/api/v1/recordings/sessions/start",
            headers=headers,
            json={"appointment_id": tenant["appointment_ids"][0]},
        )
        assert started.status_code == 201, started.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        httpx.get(f"{info['app_url']}/healthz", timeout=1)
        raise AssertionError("the app still answers after stormproof up was terminated")
    except httpx.HTTPError:
        pass


def test_unknown_weakening_is_a_clear_error() -> None:
    result = subprocess.run([STORMPROOF, "up", "--weaken", "sesion-lock"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown weakening(s) sesion-lock" in result.stderr
    assert "Traceback" not in result.stderr


def test_weakenings_are_listed() -> None:
    result = subprocess.run([STORMPROOF, "weakenings"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "session-unique-index" in result.stdout


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_a_run_stopped_before_its_verdict_never_exits_0(tmp_path, signum: int, code: int) -> None:
    """A CI job cancelled or timed out in the middle of a run must not read as a pass."""
    proc = subprocess.Popen(
        [STORMPROOF, "run", "smoke", "--duration", "60", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default,
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # the load's progress lines: the stack is up and the load runs
            seen.append(line)
            if " rps " in line:
                break
        else:
            raise AssertionError(f"the run ended before its load began: {''.join(seen)[-2000:]}")
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code
        assert "not a pass" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
