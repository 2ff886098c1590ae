"""toxiproxy-node-client (the npm package) drives `stormproof proxy` unchanged.

The node script ``node/compat.js`` creates every toxic type the client knows,
with the attribute ranges upstream Toxiproxy accepts (any integer, negatives
included; toxicities outside [0, 1]), reads them back, updates and removes
them, and checks what each toxic does to traffic. ``scripts/install.sh``
installs the client into ``tests/faults/node/node_modules``; without node or
the client the test is skipped on a laptop and FAILS when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"
CLIENT = NODE_DIR / "node_modules" / "toxiproxy-node-client"


def _missing(reason: str) -> None:
    message = f"{reason}: run scripts/install.sh (it installs node's client with npm into {NODE_DIR}/node_modules)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def stormproof_proxy():
    """`stormproof proxy --port 0` as its own process, as a user would run it."""
    stormproof = Path(sys.executable).parent / "stormproof"
    command = [str(stormproof)] if stormproof.exists() else [sys.executable, "-m", "stormproof.harness.faults"]
    proc = subprocess.Popen([*command, *(["proxy"] if stormproof.exists() else []), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"listening on (\S+:\d+)", line)
        assert match, f"stormproof proxy did not start: {line!r}"
        yield f"http://{match.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_toxiproxy_node_client_against_stormproof_proxy(stormproof_proxy: str, echo_addr) -> None:
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not CLIENT.is_dir():
        _missing(f"toxiproxy-node-client is not installed in {CLIENT.parent}")
    done = subprocess.run(
        [node, str(NODE_DIR / "compat.js"), stormproof_proxy, f"{echo_addr[0]}:{echo_addr[1]}"],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=240,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines and "summary" in lines[-1], f"no summary from compat.js:\n{done.stdout}\n{done.stderr}"
    failed = [line for line in lines[:-1] if not line["ok"]]
    summary = lines[-1]["summary"]
    assert not failed, "toxiproxy-node-client checks failed:\n" + "\n".join(
        f"- {line['check']}: {line['detail']}" for line in failed
    )
    assert done.returncode == 0, done.stderr
    # Every toxic type the client declares was exercised.
    declared = (CLIENT / "dist" / "Toxic.d.ts").read_text()
    types = set(re.findall(r'"(\w+)"', re.search(r"export type Type = ([^;]+);", declared).group(1)))
    checked = " ".join(line["check"] for line in lines[:-1])
    assert {t for t in types if t not in checked} == set(), "a toxic type of the client went untested"
    assert summary["passed"] >= 80 and summary["failed"] == 0
