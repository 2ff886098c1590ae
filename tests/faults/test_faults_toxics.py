"""Each toxic's observable effect on a real TCP echo server through the proxy.

Timing assertions use generous margins: they check that an effect happened
(e.g. at least most of the latency was added), never precise durations.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from stormproof.harness.faults import ProxyInfo, ToxiproxyClient

from conftest import connect, recv_exactly, recv_until_eof, round_trip


def test_no_toxic_passes_bytes_intact(proxy: ProxyInfo) -> None:
    payload = os.urandom(4 << 20)
    with connect(proxy.port) as sock:
        # send from a thread: the echo fills both directions' buffers at once
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        sender.join(5.0)


def test_latency_delays_each_round_trip(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "latency", {"latency": 150})
    with connect(proxy.port) as sock:
        assert round_trip(sock) >= 0.14


def test_latency_upstream_stream(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "latency", {"latency": 150, "jitter": 10}, stream="upstream")
    with connect(proxy.port) as sock:
        assert round_trip(sock) >= 0.13


def test_toxic_added_and_removed_on_live_connection(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    with connect(proxy.port) as sock:
        round_trip(sock)
        client.add_toxic("echo", "latency", {"latency": 300})
        assert round_trip(sock) >= 0.28
        client.remove_toxic("echo", "latency_downstream")
        assert round_trip(sock) < 0.25


def test_update_applies_to_live_connection(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "latency", {"latency": 0})
    with connect(proxy.port) as sock:
        round_trip(sock)
        client.update_toxic("echo", "latency_downstream", {"latency": 250})
        assert round_trip(sock) >= 0.23


def test_toxicity_zero_has_no_effect(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "latency", {"latency": 1000}, toxicity=0.0)
    with connect(proxy.port) as sock:
        assert round_trip(sock) < 0.8


def test_timeout_zero_swallows_data_until_removed(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "timeout", {"timeout": 0})
    with connect(proxy.port, timeout=0.4) as sock:
        sock.sendall(b"lost")
        with pytest.raises(socket.timeout):
            sock.recv(100)  # held open, nothing delivered
        client.remove_toxic("echo", "timeout_downstream")
        sock.settimeout(5.0)
        assert round_trip(sock, b"after") < 2.0


def test_timeout_closes_connection_after_delay(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "timeout", {"timeout": 200})
    with connect(proxy.port) as sock:
        start = time.monotonic()
        sock.sendall(b"x")
        assert recv_until_eof(sock) == b""
        assert 0.15 <= time.monotonic() - start < 4.0


def test_reset_peer_gives_econnreset(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "reset_peer", {"timeout": 0})
    with connect(proxy.port) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            for _ in range(10):
                if not sock.recv(100):
                    break
            sock.sendall(b"more")  # if the RST raced the read, the write shows it
            sock.recv(100)


def test_limit_data_closes_after_n_bytes(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "limit_data", {"bytes": 10})
    with connect(proxy.port) as sock:
        sock.sendall(b"0123456789abcdefghij" * 5)
        assert recv_until_eof(sock) == b"0123456789"


def test_bandwidth_limits_rate(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "bandwidth", {"rate": 100})  # 100 KB/s
    payload = os.urandom(50_000)  # ideal: 0.5 s
    with connect(proxy.port) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        elapsed = time.monotonic() - start
    assert 0.35 <= elapsed < 3.0


def test_slicer_splits_writes(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "slicer", {"average_size": 100, "size_variation": 20, "delay": 3000})
    payload = os.urandom(2000)
    with connect(proxy.port) as sock:
        sock.sendall(payload)
        reads = []
        for _ in range(1000):
            if sum(reads) >= len(payload):
                break
            reads.append(len(sock.recv(65536)))
    assert sum(reads) == len(payload)
    assert len(reads) >= 5  # ~20 slices 3 ms apart cannot arrive in one read


def test_slow_close_delays_the_close(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "slow_close", {"delay": 300})
    with connect(proxy.port) as sock:
        assert round_trip(sock) < 2.0
        start = time.monotonic()
        sock.shutdown(socket.SHUT_WR)  # echo server sees EOF and closes
        assert recv_until_eof(sock) == b""
        assert time.monotonic() - start >= 0.25


def test_disable_closes_live_connections_and_refuses_new(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    with connect(proxy.port) as sock:
        round_trip(sock)
        client.disable_proxy("echo")
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.port, timeout=1.0)
    client.enable_proxy("echo")
    with connect(client.get_proxy("echo").port) as sock:
        assert round_trip(sock) < 2.0


def test_upstream_unreachable_closes_client(client: ToxiproxyClient) -> None:
    with socket.socket() as probe:  # a port with no listener
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    info = client.create_proxy("dead", upstream=f"127.0.0.1:{dead}")
    with connect(info.port) as sock:
        try:
            assert sock.recv(10) == b""
        except ConnectionResetError:
            pass


@pytest.mark.parametrize(("average", "variation"), [(5, 9), (10, 10), (0, 7), (1, 0), (3, 100)])
def test_slicer_accepts_what_upstream_accepts(average: int, variation: int) -> None:
    """Upstream Toxiproxy creates a slicer whatever its attributes (toxiproxy-node-client
    relies on it); every cut must still fall strictly inside the data, in order."""
    from stormproof.harness.faults.toxics import lookup

    toxic = lookup("slicer").from_attributes({"average_size": average, "size_variation": variation})
    for size in (0, 1, 2, 17, 1000):
        for _ in range(20):
            points = toxic.cut_points(size)
            assert points[0] == 0 and points[-1] == size
            assert all(a < b for a, b in zip(points, points[1:])) or size == 0


def test_slicer_with_large_variation_keeps_bytes(client: ToxiproxyClient, proxy: ProxyInfo) -> None:
    client.add_toxic("echo", "slicer", {"average_size": 5, "size_variation": 9})
    payload = os.urandom(3000)
    with connect(proxy.port) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
