"""A keyed write of the load whose answer was lost is sent again under the same key, as real clients do.

The app must then replay what ran (or run it now), so a write committed just before a crash becomes an
acknowledged answer the checkers judge. Probes are never resent. Run in a subprocess against a real
socket server: gevent and Locust patch the interpreter they load in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r'''
import json, os, sys
from gevent import monkey
monkey.patch_all()
import gevent
from gevent.server import StreamServer

plan = iter(sys.argv[2].split(","))  # per connection: "drop" (close unanswered), "busy" (409 in flight), "error"
BODIES = {"ok": (202, b'{"id": "k1"}'), "error": (503, b'{"type": "https://stormproof.dev/problems/unavailable"}'),
          "busy": (409, b'{"type": "https://stormproof.dev/problems/idempotency-key-in-flight"}')}


def serve(sock, addr):
    request = b""
    while b"\r\n\r\n" not in request:
        request += sock.recv(65536)
    what = next(plan, "ok")
    if what == "drop":
        sock.close()
        return
    status, body = BODIES[what]
    sock.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (status, len(body), body))
    sock.close()


server = StreamServer(("127.0.0.1", 0), serve)
server.start()
config = {"app_url": f"http://127.0.0.1:{server.server_port}", "webhook_secret": "s", "history_dir": sys.argv[1],
          "tenants": [{"company_id": "c1", "manager_token": "t", "appointment_ids": ["a1"]}]}
path = os.path.join(sys.argv[1], "config.json")
with open(path, "w") as f:
    json.dump(config, f)
os.environ["STORMPROOF_LOAD_CONFIG"] = path
from locust.env import Environment
from stormproof.harness.load import users

users._RESEND_WAITS_S = (0.01, 0.01, 0.01)  # the count and the rules are under test, not the waits
users.StormUser.host = config["app_url"]
user = users.StormUser(Environment(user_classes=[users.StormUser], host=config["app_url"]))
user.on_start()
answer = user._send(sys.argv[3], "POST", "/api/v1/calls", args={"appointment_id": "a1"}, body={"appointment_id": "a1"},
                    key="key-1", token="t")
users.recorder().close()
print(json.dumps({"status": answer.status}))
'''


def _sent(tmp_path: Path, plan: str, f: str = "call.submit") -> tuple[int, list[dict]]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), plan, f], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads(done.stdout.strip().splitlines()[-1])["status"]
    (history,) = tmp_path.glob("load-*.jsonl")
    invokes = [op for line in history.read_text().splitlines() if (op := json.loads(line))["type"] == "invoke"]
    return status, invokes


def test_a_lost_answer_is_sent_again_under_the_same_key(tmp_path: Path) -> None:
    status, invokes = _sent(tmp_path, "drop,ok")
    assert status == 202
    assert [op["args"].get("resend") for op in invokes] == [None, 1]
    assert {op["args"]["idempotency_key"] for op in invokes} == {"key-1"}
    assert invokes[0]["args"]["trace_id"] != invokes[1]["args"]["trace_id"]  # each request its own trace


def test_a_resend_finding_the_first_still_in_flight_waits_and_sends_again_at_most_three_times(tmp_path: Path) -> None:
    (tmp_path / "once").mkdir()
    status, invokes = _sent(tmp_path / "once", "drop,busy,ok")
    assert (status, [op["args"].get("resend") for op in invokes]) == (202, [None, 1, 2])
    (tmp_path / "again").mkdir()
    status, invokes = _sent(tmp_path / "again", "drop,drop,drop,drop,ok")
    assert (status, len(invokes)) == (0, 4)  # bounded: the answer stays lost after three resends


def test_a_5xx_is_sent_again_under_the_same_key(tmp_path: Path) -> None:
    """A 5xx stores nothing under the key (the write rolled back): a careful client retries it, and the app must
    run the retry, not replay the error (idempotent-replay: error-replayed)."""
    status, invokes = _sent(tmp_path, "error,ok")
    assert status == 202
    assert [(op["args"].get("resend"), op["args"].get("resend_after")) for op in invokes] == [(None, None), (1, "5xx")]
    assert {op["args"]["idempotency_key"] for op in invokes} == {"key-1"}


def test_an_answer_or_a_probe_is_never_resent(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    status, invokes = _sent(tmp_path / "a", "busy,ok")  # a first 409 is an answer (another use of the key)
    assert (status, len(invokes)) == (409, 1)
    (tmp_path / "b").mkdir()
    status, invokes = _sent(tmp_path / "b", "drop,ok", f="probe.idempotency")
    assert (status, len(invokes)) == (0, 1)
