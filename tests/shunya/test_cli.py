"""``python -m stormproof.harness.shunya`` runs a real stub process; ``main`` rejects bad arguments."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stormproof.harness.shunya import ShunyaStubClient, main

from .conftest import SECRET, WebhookReceiver

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--webhook-url", "http://127.0.0.1:1/h"],
        ["--webhook-url", "http://198.51.100.7/h", "--webhook-secret", "s"],
        ["--webhook-url", "http://127.0.0.1:1/h", "--webhook-secret", "s", "--config", '{"error_rate": 3}'],
        ["--webhook-url", "http://127.0.0.1:1/h", "--webhook-secret", "s", "--config", "[1]"],
        ["--webhook-url", "http://127.0.0.1:1/h", "--webhook-secret", "s", "--port", "70000"],
    ],
)
def test_bad_arguments_exit_with_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_module_runs_a_stub_that_delivers_and_stops_on_sigint(receiver: WebhookReceiver) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "stormproof.harness.shunya", "--port", "0",
        "--webhook-url", receiver.url, "--webhook-secret", SECRET,
        "--config", '{"complete_after_ms": 0}',
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 20)
        assert ready, "the stub did not announce itself"
        line = proc.stderr.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        with ShunyaStubClient(match.group(1)) as client:
            job_id = client.create_job("c", "co")["job_id"]
            (delivery,) = receiver.wait_for(1)
            assert delivery.json["job_id"] == job_id
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.stderr.close()
