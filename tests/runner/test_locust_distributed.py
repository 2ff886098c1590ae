"""Locust across machines: a master and two workers, separate processes in separate
working directories, against one `stormproof up`; the workers' histories reach the
master over Locust's custom messages, shifted onto its clock; `stormproof check` on
the master's directory gives a pass. Starts a stack: run under the heavy lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from stormproof.harness.load.stackfile import wait_for_stack_file

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_master_and_two_workers_make_one_history(tmp_path: Path) -> None:
    dirs = {name: tmp_path / name for name in ("stack", "master", "worker1", "worker2")}
    for path in dirs.values():
        path.mkdir()
    stack_json = dirs["stack"] / "stack.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORMPROOF_")}
    up = subprocess.Popen([str(BIN / "stormproof"), "up", "--json-file", str(stack_json)], cwd=dirs["stack"],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs: list[subprocess.Popen] = []
    try:
        wait_for_stack_file(stack_json, timeout_s=240)
        load_env = {**env, "STORMPROOF_STACK_JSON": str(stack_json)}
        port = _free_port()
        locust = [str(BIN / "locust"), "-f", str(ROOT / "locustfile.py")]
        master = subprocess.Popen(
            [*locust, "--master", "--headless", "-u", "12", "-r", "12", "-t", "8s", "--expect-workers", "2",
             "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port), "--loglevel", "WARNING"],
            cwd=dirs["master"], env=load_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(master)
        for name in ("worker1", "worker2"):
            procs.append(subprocess.Popen(
                [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING"],
                cwd=dirs[name], env=load_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        out, _ = master.communicate(timeout=180)
        for worker in procs[1:]:
            worker.wait(timeout=60)

        history = dirs["master"] / "stormproof-history"
        offsets = json.loads((history / "clock-offsets.json").read_text())
        assert len(offsets) == 2, out[-3000:]
        for entry in offsets.values():
            assert entry["pings"] >= 4 and 0 <= entry["uncertainty_ns"] < 50_000_000
            assert entry["ops"] > 0 and (history / entry["file"]).is_file()
        for name in ("worker1", "worker2"):  # each worker also kept its own file, as recorded
            (own,) = (dirs[name] / "stormproof-history").glob("load-*.jsonl")
            lines = [line for line in own.read_text().splitlines() if line.strip()]
            assert len(lines) in {entry["ops"] for entry in offsets.values()}

        check = subprocess.run(
            [str(BIN / "stormproof"), "check", str(history), "--stack", str(stack_json),
             "--out", str(dirs["master"] / "reports")],
            cwd=dirs["master"], env=env, capture_output=True, text=True, timeout=300)
        # An 8 s load of two workers is about transport, too short to exercise every promise of smoke (a
        # probe of weight 1 may never be drawn): what it did exercise must hold, and the rest must say
        # "not exercised" (exit 2), never pass and never fail.
        assert check.returncode in (0, 2), check.stdout[-4000:] + check.stderr[-2000:]
        (run,) = (dirs["master"] / "reports").glob("check-*")
        result = json.loads((run / "result.json").read_text())
        assert result["error"] is None and result.get("not_run") is None, result["error"]
        statuses = {v["invariant"]: v for v in result["verdicts"] if v["kind"] != "slo"}  # SLOs are apart
        assert not [name for name, v in statuses.items() if v["status"] == "invalid"], statuses
        unknown = {name: v["error"] for name, v in statuses.items() if v["status"] == "unknown"}
        assert all(str(error).startswith("not exercised") for error in unknown.values()), unknown
        assert statuses["single-active-session"]["status"] == "valid"
        assert result["stats"]["requests"] > 20
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=120)
    assert up.returncode == 0, up.stderr.read() if up.stderr else ""
    assert not stack_json.exists()
