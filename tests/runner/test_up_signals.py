"""`stormproof up` stops cleanly on SIGINT and SIGTERM, even as a script's background job
(SIGINT ignored by the shell), with its connection file written atomically once ready and
removed at the end. A stand-in stack (no services) keeps this a unit test."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FAKE = r'''
import sys, time
import stormproof.harness.stack as stack_pkg

class FakeStack:
    def __init__(self, config):
        self.config = config
    def __enter__(self):
        time.sleep(0.5)  # services starting: the file must not exist yet
        print("started", file=sys.stderr, flush=True)
        return self
    def info(self):
        return {"app_url": "http://127.0.0.1:1", "app_direct_url": "http://127.0.0.1:1", "run_dir": sys.argv[1],
                "ready_after_s": 0.5, "tenants": [], "database_url": "postgresql://x@127.0.0.1:1/x"}
    def __exit__(self, *exc):
        time.sleep(0.3)
        print("stopped-cleanly", file=sys.stderr, flush=True)

stack_pkg.LocalStack = FakeStack
from stormproof.harness.cli import main
sys.exit(main(["up", "--json-file", sys.argv[2]]))
'''


def _start(tmp_path: Path, ignore_sigint: bool) -> tuple[subprocess.Popen, Path]:
    target = tmp_path / "stack.json"
    target.write_text("stale")  # from an earlier stack: must not be read as this one
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    proc = subprocess.Popen([sys.executable, "-c", FAKE, str(tmp_path), str(target)], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, preexec_fn=preexec)
    return proc, target


def _wait_ready(target: Path) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            text = target.read_text()
        except FileNotFoundError:  # between `up` removing the stale file and renaming its own into place
            text = "stale"
        if text != "stale":  # until `up` removes the stale file, then writes its own
            return json.loads(text)  # never partial

        time.sleep(0.02)
    raise AssertionError("no connection file (or the stale one was kept)")


@pytest.mark.parametrize(("sig", "ignore_sigint"), [
    (signal.SIGTERM, False), (signal.SIGINT, False),
    (signal.SIGTERM, True), (signal.SIGINT, True),  # a background job of a script: SIGINT ignored at start
])
def test_up_stops_cleanly_and_removes_its_file(tmp_path: Path, sig: int, ignore_sigint: bool) -> None:
    proc, target = _start(tmp_path, ignore_sigint)
    try:
        info = _wait_ready(target)
        assert info["app_url"] == "http://127.0.0.1:1" and "origin_ns" in info and "ready_at" in info
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read() if proc.stderr else ""
        assert "stopped-cleanly" in err, err
        assert not target.exists()
        assert not list(tmp_path.glob(".stack.json.*"))  # no temporary left behind
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_second_signal_does_not_cut_the_shutdown_short(tmp_path: Path) -> None:
    proc, target = _start(tmp_path, False)
    try:
        _wait_ready(target)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "stopped-cleanly" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
