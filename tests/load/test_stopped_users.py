"""A stopped Locust user leaves nothing running and nothing unrecorded behind it.

A distributed worker ships its history as soon as its users are stopped; a request that
went on (a helper greenlet of the user) or ended unrecorded (the kill arrived mid-request)
would be missing from the master's copy. Run in a subprocess: gevent and Locust patch
the interpreter they load in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r'''
import json, sys
from gevent import monkey
monkey.patch_all()
import gevent
from gevent.server import StreamServer
from locust.env import Environment
from locust.contrib.fasthttp import FastHttpSession

from stormproof.harness.history.spool import SpooledRecorder
from stormproof.harness.load.client import Derived, record_request, together

finished = []


def slow() -> None:
    try:
        gevent.sleep(30)
    finally:
        finished.append("ended")


parent = gevent.spawn(together, slow, slow)
gevent.sleep(0.1)
parent.kill(block=True)
helpers_ended = len(finished)

server = StreamServer(("127.0.0.1", 0), lambda sock, addr: gevent.sleep(30))  # accepts, never answers
server.start()
session = FastHttpSession(f"http://127.0.0.1:{server.server_port}", Environment().events.request, user=None)
recorder = SpooledRecorder(sys.argv[1], Derived({}))
user = gevent.spawn(record_request, session, recorder, process="u1", f="call.submit", tenant=None, method="GET",
                    path="/x", args={})
gevent.sleep(0.3)
user.kill(block=True)
recorder.close()
print(json.dumps({"helpers_ended": helpers_ended}))
'''


def test_a_stopped_user_kills_its_helpers_and_records_its_cut_request(tmp_path: Path) -> None:
    history = tmp_path / "load.jsonl"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(history)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"helpers_ended": 2}  # both ended before kill returned
    ops = [json.loads(line) for line in history.read_text().splitlines()]
    assert [op["type"] for op in ops] == ["invoke", "info"], ops  # sent, answer unknown: an info completion
    assert "GreenletExit" in ops[1]["error"]
