"""Benchmark the fault proxy against a direct connection, in one run.

Starts a uvloop echo server and ``python -m stormproof.harness.faults`` as separate
processes (so the proxy does not share a GIL with the measuring client), then
prints round-trip latency p50/p99 (us) and echo throughput (MB/s) direct vs
through the proxy with no toxics, and requested vs measured latency for the
latency toxic.  Loopback only, bounded loops, well under 30 s.

    .venv/bin/python bench/bench_proxy.py
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stormproof.harness.faults.client import ToxiproxyClient  # noqa: E402

ECHO_SERVER = r"""
import asyncio, sys
try:
    import uvloop
except ImportError:
    uvloop = None
class Echo(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, d): self.t.write(d)
async def main():
    srv = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(120)  # bounded lifetime
(uvloop.run if uvloop else asyncio.run)(main())
"""

ROUND_TRIPS = 5000
THROUGHPUT_BYTES = 64 << 20
LATENCY_SAMPLES = 20
ROUNDS = 5


def _spawn(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, size: int, buf: bytearray) -> None:
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:size])
        if n == 0:
            raise ConnectionError("closed early")
        got += n


def round_trips(port: int, count: int, warmup: int = 100) -> list[float]:
    """Round-trip times (us) of 64-byte messages, after a warm-up."""
    payload = b"x" * 64
    buf = bytearray(64)
    samples = []
    with _connect(port) as sock:
        for i in range(count + warmup):
            start = time.perf_counter_ns()
            sock.sendall(payload)
            _recv_exactly(sock, 64, buf)
            if i >= warmup:
                samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def throughput(port: int, total: int) -> float:
    """MB/s echoed (sent and received concurrently)."""
    block = os.urandom(256 << 10)
    total -= total % len(block)  # the sender sends whole blocks only
    buf = bytearray(1 << 20)
    with _connect(port) as sock:
        def send() -> None:
            for _ in range(total // len(block)):
                sock.sendall(block)
        sender = threading.Thread(target=send, daemon=True)
        start = time.perf_counter()
        sender.start()
        got = 0
        while got < total:
            n = sock.recv_into(buf)
            if n == 0:
                raise ConnectionError("closed early")
            got += n
        elapsed = time.perf_counter() - start
        sender.join(10)
    return total / elapsed / 1e6


def pct(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def main() -> None:
    echo, echo_port = _spawn([sys.executable, "-c", ECHO_SERVER])
    proxy_srv, line = _spawn([sys.executable, "-m", "stormproof.harness.faults", "--port", "0"])
    try:
        api = "http://" + line.rsplit(" ", 1)[1]
        with ToxiproxyClient(api) as client:
            port = client.create_proxy("bench", f"127.0.0.1:{echo_port}").port
            # Interleave the two paths in rounds so machine noise (2 shared
            # cores, scheduler wake-ups) hits both alike.
            paths = (("direct", int(echo_port)), ("proxy, no toxics", port))
            samples: dict[str, list[float]] = {label: [] for label, _ in paths}
            rates: dict[str, list[float]] = {label: [] for label, _ in paths}
            for _ in range(ROUNDS):
                for label, target in paths:
                    samples[label] += round_trips(target, ROUND_TRIPS // ROUNDS)
                    rates[label].append(throughput(target, THROUGHPUT_BYTES // ROUNDS))
            rows = [(label, pct(samples[label], 50), pct(samples[label], 99), statistics.median(rates[label]))
                    for label, _ in paths]
            print(f"{'path':<18} {'p50 us':>9} {'p99 us':>9} {'MB/s':>9}")
            for label, p50, p99, mbps in rows:
                print(f"{label:<18} {p50:>9.1f} {p99:>9.1f} {mbps:>9.1f}")
            print(f"proxy overhead: p50 +{rows[1][1] - rows[0][1]:.1f} us, "
                  f"throughput {rows[1][3] / rows[0][3] * 100:.0f}% of direct")
            print()
            print(f"{'latency toxic':<18} {'requested ms':>12} {'measured p50 ms':>16} {'measured max ms':>16}")
            for requested in (10, 50, 100):
                client.add_toxic("bench", "latency", {"latency": requested})
                rt = [s / 1000 for s in round_trips(port, LATENCY_SAMPLES, warmup=1)]
                client.remove_toxic("bench", "latency_downstream")
                print(f"{'downstream':<18} {requested:>12} {statistics.median(rt):>16.2f} {max(rt):>16.2f}")
    finally:
        for proc in (proxy_srv, echo):
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    main()
