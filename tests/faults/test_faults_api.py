"""Toxiproxy HTTP API conformance: shapes, status codes, defaults, errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stormproof.harness.faults import ProxyInfo, RunningServer, ToxiproxyClient, ToxiproxyError

from conftest import connect, round_trip

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def http(fault_server: RunningServer):
    with httpx.Client(base_url=fault_server.url, timeout=5.0) as c:
        yield c


def test_version(http: httpx.Client) -> None:
    r = http.get("/version")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["version"].startswith("2.")


def test_create_proxy_shape_and_defaults(http: httpx.Client, echo_addr) -> None:
    r = http.post("/proxies", json={"name": "p", "upstream": f"127.0.0.1:{echo_addr[1]}"})
    assert r.status_code == 201
    body = r.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert body["enabled"] is True and body["toxics"] == []
    assert body["listen"].startswith("127.0.0.1:") and not body["listen"].endswith(":0")
    assert http.get("/proxies").json() == {"p": body}
    assert http.get("/proxies/p").json() == body


def test_create_disabled_proxy_does_not_listen(http: httpx.Client) -> None:
    r = http.post("/proxies", json={"name": "off", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0",
                                    "enabled": False})
    assert r.status_code == 201 and r.json()["enabled"] is False


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"upstream": "127.0.0.1:1"}, 400, "missing required field: name"),
        ({"name": "x"}, 400, "missing required field: upstream"),
        ({"name": "x", "upstream": "nonsense"}, 400, "bad request body"),
        ({"name": 5, "upstream": "127.0.0.1:1"}, 400, "bad request body"),
    ],
)
def test_create_proxy_errors(http: httpx.Client, body, status: int, message: str) -> None:
    r = http.post("/proxies", json=body)
    assert r.status_code == status
    assert r.json()["status"] == status and r.json()["error"].startswith(message)


def test_bad_json_is_a_json_error(http: httpx.Client) -> None:
    r = http.post("/proxies", content=b"{not json")
    assert r.status_code == 400
    assert r.json()["error"].startswith("bad request body: ")


def test_duplicate_and_missing_proxy(http: httpx.Client, proxy: ProxyInfo) -> None:
    r = http.post("/proxies", json={"name": "echo", "upstream": "127.0.0.1:1"})
    assert (r.status_code, r.json()) == (409, {"error": "proxy already exists", "status": 409})
    r = http.get("/proxies/nope")
    assert (r.status_code, r.json()) == (404, {"error": "proxy not found", "status": 404})
    assert http.delete("/proxies/nope").status_code == 404
    assert http.get("/proxies/nope/toxics").status_code == 404


def test_listen_address_in_use(http: httpx.Client, proxy: ProxyInfo) -> None:
    r = http.post("/proxies", json={"name": "clash", "upstream": "127.0.0.1:1", "listen": proxy.listen})
    assert r.status_code == 500
    assert "address already in use" in r.json()["error"]
    assert "clash" not in http.get("/proxies").json()


def test_toxic_create_defaults_and_shape(http: httpx.Client, proxy: ProxyInfo) -> None:
    r = http.post("/proxies/echo/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    assert r.status_code == 200
    assert r.json() == {
        "attributes": {"latency": 10, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }
    assert http.get("/proxies/echo/toxics").json() == [r.json()]
    assert http.get("/proxies/echo/toxics/latency_downstream").json() == r.json()
    assert http.get("/proxies/echo").json()["toxics"] == [r.json()]


def test_toxics_list_upstream_first(http: httpx.Client, proxy: ProxyInfo) -> None:
    http.post("/proxies/echo/toxics", json={"type": "latency"})
    http.post("/proxies/echo/toxics", json={"type": "slicer", "stream": "upstream",
                                            "attributes": {"average_size": 10}})
    names = [t["name"] for t in http.get("/proxies/echo/toxics").json()]
    assert names == ["slicer_upstream", "latency_downstream"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "nope"}, 400, "invalid toxic type"),
        ({"type": "latency", "stream": "sideways"}, 400, "stream was invalid, can be either upstream or downstream"),
        ({"type": "latency", "attributes": {"latency": "slow"}}, 400, "bad request body"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, 400, "bad request body"),
        ({"type": "latency", "attributes": {"latency": 1.0}}, 400, "bad request body"),  # Go: not an int64
        ({"type": "latency", "attributes": {"latency": 1 << 63}}, 400, "bad request body"),
        ({"type": "latency", "attributes": 5}, 400, "bad request body"),
        ({"type": "latency", "toxicity": "1"}, 400, "bad request body"),
        ({"type": 5}, 400, "bad request body"),
        ({"type": "latency", "stream": 1}, 400, "bad request body"),  # a JSON type error before the stream check
    ],
)
def test_toxic_create_errors(http: httpx.Client, proxy: ProxyInfo, body, status: int, message: str) -> None:
    r = http.post("/proxies/echo/toxics", json=body)
    assert r.status_code == status
    assert r.json()["error"].startswith(message)
    assert http.get("/proxies/echo/toxics").json() == []


def test_toxic_conflict_update_delete(http: httpx.Client, proxy: ProxyInfo) -> None:
    http.post("/proxies/echo/toxics", json={"type": "latency", "attributes": {"latency": 100}})
    r = http.post("/proxies/echo/toxics", json={"type": "latency"})
    assert (r.status_code, r.json()) == (409, {"error": "toxic already exists", "status": 409})
    r = http.post("/proxies/echo/toxics/latency_downstream", json={"attributes": {"jitter": 5}, "toxicity": 0.5})
    assert r.status_code == 200
    assert r.json()["attributes"] == {"latency": 100, "jitter": 5} and r.json()["toxicity"] == 0.5
    r = http.patch("/proxies/echo/toxics/latency_downstream", json={"attributes": {"latency": 1}})
    assert r.json()["attributes"] == {"latency": 1, "jitter": 5}
    assert http.post("/proxies/echo/toxics/nope", json={}).status_code == 404
    assert http.delete("/proxies/echo/toxics/latency_downstream").status_code == 204
    r = http.delete("/proxies/echo/toxics/latency_downstream")
    assert (r.status_code, r.json()) == (404, {"error": "toxic not found", "status": 404})


def test_populate_creates_keeps_and_replaces(http: httpx.Client, echo_addr) -> None:
    up = f"127.0.0.1:{echo_addr[1]}"
    r = http.post("/populate", json=[{"name": "a", "upstream": up}, {"name": "b", "upstream": up}])
    assert r.status_code == 201
    created = {p["name"]: p for p in r.json()["proxies"]}
    assert set(created) == {"a", "b"}
    again = http.post("/populate", json=[{"name": "a", "upstream": up, "listen": created["a"]["listen"]}])
    assert again.status_code == 201 and again.json()["proxies"][0] == created["a"]
    r = http.post("/populate", json=[{"name": "a", "upstream": "127.0.0.1:1"}])
    assert r.json()["proxies"][0]["upstream"] == "127.0.0.1:1"


def test_populate_error_shape(http: httpx.Client) -> None:
    r = http.post("/populate", json=[{"name": "a", "upstream": "127.0.0.1:1"}, {"name": "b"}])
    assert r.status_code == 400
    assert r.json() == {"error": "missing required field: upstream at proxy 2", "status": 400, "proxies": None}
    assert http.get("/proxies").json() == {}  # validated before applying
    assert http.post("/populate", json={"not": "a list"}).status_code == 400


def test_update_proxy_enable_disable_and_reset(http: httpx.Client, proxy: ProxyInfo) -> None:
    http.post("/proxies/echo/toxics", json={"type": "latency"})
    r = http.post("/proxies/echo", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert r.json()["upstream"] == proxy.upstream  # unspecified fields keep their values
    assert http.post("/reset").status_code == 204
    body = http.get("/proxies/echo").json()
    assert body["enabled"] is True and body["toxics"] == []


def test_delete_proxy_closes_listener(http: httpx.Client, proxy: ProxyInfo) -> None:
    assert http.delete("/proxies/echo").status_code == 204
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.port, timeout=1.0)


def test_metrics_count_bytes_and_connections(http: httpx.Client, proxy: ProxyInfo) -> None:
    with connect(proxy.port) as sock:
        round_trip(sock, b"x" * 1000)
        text = http.get("/metrics").text
        assert 'stormproof_proxy_active_connections{proxy="echo"} 1' in text
    assert 'stormproof_proxy_connections_total{proxy="echo"} 1' in text
    lines = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if not line.startswith("#")}
    key = next(k for k in lines if k.startswith("toxiproxy_proxy_sent_bytes_total") and 'direction="downstream"' in k)
    assert int(lines[key]) == 1000


def test_routing_errors_are_json(http: httpx.Client) -> None:
    assert http.get("/nope").json()["status"] == 404
    assert http.put("/proxies").status_code == 405
    r = http.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert r.status_code == 403 and r.json()["error"] == "User agent not allowed"


def test_our_client_raises_typed_errors(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    with pytest.raises(ToxiproxyError) as info:
        client.create_proxy("echo", upstream=proxy.upstream)
    assert info.value.status == 409
    toxic = client.add_toxic("echo", "bandwidth", {"rate": 5}, stream="upstream", toxicity=0.5)
    assert (toxic.name, toxic.stream, toxic.toxicity, dict(toxic.attributes)) == (
        "bandwidth_upstream", "upstream", 0.5, {"rate": 5})
    assert client.get_proxy("echo").toxics == (toxic,)
    assert client.update_toxic("echo", toxic.name, {"rate": 7}).attributes["rate"] == 7
    assert [p.name for p in client.populate([{"name": "x", "upstream": proxy.upstream}])] == ["x"]
    assert set(client.list_proxies()) == {"echo", "x"}
    assert client.disable_proxy("echo").enabled is False
    client.reset()
    assert client.get_proxy("echo").enabled is True and client.list_toxics("echo") == []
    client.delete_proxy("x")
    with pytest.raises(ToxiproxyError) as info:
        client.get_proxy("x")
    assert info.value.status == 404
    assert "toxiproxy_proxy_received_bytes_total" in client.metrics()


def test_client_times_out_instead_of_hanging() -> None:
    with socket.socket() as silent:  # accepts (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with ToxiproxyClient(f"http://127.0.0.1:{port}", timeout=0.3) as c:
            start = time.monotonic()
            with pytest.raises(httpx.TimeoutException):
                c.version()
            assert time.monotonic() - start < 3.0


def test_module_entry_point_starts_fast_and_reports_port_clash(tmp_path: Path, echo_addr) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "cfg", "upstream": f"127.0.0.1:{echo_addr[1]}"}]))
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stormproof.harness.faults", "--port", "0", "--config", str(config)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "listening on 127.0.0.1:" in line, line
        assert time.monotonic() - start < 5.0
        port = int(line.rsplit(":", 1)[1])
        with ToxiproxyClient(f"http://127.0.0.1:{port}") as c:
            assert list(c.list_proxies()) == ["cfg"]
        clash = subprocess.run(
            [sys.executable, "-m", "stormproof.harness.faults", "--port", str(port)],
            cwd=REPO, capture_output=True, text=True, timeout=10,
        )
        assert clash.returncode == 1
        assert "address already in use" in json.loads(clash.stderr.strip().splitlines()[-1])["error"]
        assert "Traceback" not in clash.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode == 0
