"""A kill fault's restart returns once the service serves again, on the local backend as on Docker.

Before, the local restart returned as soon as the process was forked: the fault
was recorded as ended while the app was still importing its modules (12 s on a
loaded machine), and a scenario's next fault landed on a service that was not up.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from stormproof.harness.faults.process import KillFault
from stormproof.harness.stack import ManagedProcess
from stormproof.harness.stack.errors import ServiceStartError
from stormproof.harness.stack.readiness import RestartsReady, log_says
from stormproof.harness.stack.shunya import ShunyaStubProcess


def test_a_killed_service_serves_when_the_kill_fault_ends(tmp_path: Path) -> None:
    with ShunyaStubProcess(webhook_url="http://127.0.0.1:9/none", webhook_secret="s", base_dir=tmp_path) as stub:
        target = stub.fault_target()
        old = target.pid
        kill = KillFault({"shunya": target})
        handle = kill.start("shunya", {})
        assert target.pid is None
        kill.stop(handle)
        assert target.pid not in (None, old)
        # No wait here: the fault's end means the stub answers.
        assert httpx.get(f"{stub.url}/admin/health", timeout=2.0).status_code == 200


def test_a_restart_that_never_serves_fails_naming_the_service_and_kills_it(tmp_path: Path) -> None:
    process = ManagedProcess("silent", [sys.executable, "-c", "import time; time.sleep(60)"],
                             log_path=tmp_path / "silent.log")
    target = RestartsReady(process, log_says(tmp_path / "silent.log", b" ready."), service="silent service",
                           what="the service", timeout=0.5)
    with pytest.raises(ServiceStartError, match="silent service did not start: the service not ready"):
        target.start()
    assert target.pid is None


def test_a_log_check_reads_only_what_the_restart_logged(tmp_path: Path) -> None:
    log = tmp_path / "worker1.log"
    log.write_bytes(b"celery@worker1 ready.\n")  # the first start's line
    ready = log_says(log, b" ready.")()
    assert not ready()
    with log.open("ab") as fh:
        fh.write(b"[2026-11-30] celery@worker1 ready.\n")
    assert ready()
