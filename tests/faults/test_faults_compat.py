"""toxiproxy-python, a client we did not write, drives our server unchanged."""

from __future__ import annotations

import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from stormproof.harness.faults import RunningServer

from conftest import connect, round_trip


@pytest.fixture
def server(fault_server: RunningServer):
    """toxiproxy-python keeps host/port in class attributes; restore them after."""
    saved = (APIConsumer.host, APIConsumer.port)
    tp = toxiproxy.Toxiproxy()
    tp.update_api_consumer(fault_server.host, fault_server.port)
    try:
        yield tp
    finally:
        APIConsumer.host, APIConsumer.port = saved


def test_toxiproxy_python_full_cycle(server, echo_addr) -> None:
    upstream = f"127.0.0.1:{echo_addr[1]}"
    assert server.running()
    assert b"version" in server.version()

    proxy = server.create(upstream=upstream, name="compat")
    assert proxy.enabled is True and proxy.listen.startswith("127.0.0.1:")
    with pytest.raises(ProxyExists):
        server.create(upstream=upstream, name="compat")
    assert set(server.proxies()) == {"compat"}
    port = int(proxy.listen.rsplit(":", 1)[1])

    proxy.add_toxic(type="latency", attributes={"latency": 200})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    assert toxics["latency_downstream"].attributes == {"latency": 200, "jitter": 0}
    with connect(port) as sock:
        assert round_trip(sock) >= 0.18
        assert proxy.destroy_toxic("latency_downstream") is True
        assert round_trip(sock) < 0.18
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")

    proxy.disable()
    assert server.get_proxy("compat").enabled is False
    with pytest.raises(ConnectionRefusedError):
        connect(port, timeout=1.0)
    proxy.enable()
    with connect(port) as sock:
        round_trip(sock)
    with proxy.down():
        assert server.get_proxy("compat").enabled is False
    assert server.get_proxy("compat").enabled is True

    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert server.reset() is True
    after = server.get_proxy("compat")
    assert after.enabled is True and after.toxics() == {}

    populated = server.populate([
        {"name": "compat", "upstream": upstream, "listen": after.listen},  # unchanged: kept
        {"name": "second", "upstream": upstream, "listen": "127.0.0.1:0"},
    ])
    assert [p.name for p in populated] == ["second"]
    assert set(server.proxies()) == {"compat", "second"}

    assert server.destroy(server.get_proxy("second")) is True
    with pytest.raises(NotFound):
        proxy.destroy_toxic("nope")
    server.destroy_all()
    assert server.proxies() == {}
