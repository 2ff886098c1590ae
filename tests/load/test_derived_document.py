"""Where the load's probes take their routes from when the app's document is missing or failing.

A backend that serves no ``/openapi.json`` (404) is probed on docs/API.md's routes alone, where before it was
never probed (every probe "not exercised"); a document that fails otherwise (a 500) is retried, not replaced.
Run in a subprocess against a real socket server: gevent and Locust patch the interpreter they load in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r'''
import json, os, sys
from gevent import monkey
monkey.patch_all()
from gevent.server import StreamServer

status = int(sys.argv[2])


def serve(sock, addr):
    request = b""
    while b"\r\n\r\n" not in request:
        request += sock.recv(65536)
    body = b'{"detail": "no"}'
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
from stormproof.harness.load import probes, users

found = users.derived()
print(json.dumps(None if found is None else {"cross": len(found.cross), "authz": len(found.authz),
                                             "contract": len(probes.CONTRACT_ROUTES)}))
'''


def _derived(tmp_path: Path, status: int) -> dict | None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(status)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_backend_without_a_document_is_probed_on_the_contracts_routes(tmp_path: Path) -> None:
    found = _derived(tmp_path, 404)
    assert found is not None
    assert found["cross"] == 16 and found["authz"] == found["contract"] - 1  # every route but the webhook


@pytest.mark.parametrize("status", [500, 503])
def test_a_failing_document_is_retried_not_replaced(tmp_path: Path, status: int) -> None:
    assert _derived(tmp_path, status) is None
