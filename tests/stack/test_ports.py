"""Service ports come from below the ephemeral range, where outgoing connections never land."""

from __future__ import annotations

import socket

from stormproof.harness.stack.ports import _ephemeral_range, free_port


def test_free_port_is_bindable_and_outside_the_ephemeral_range() -> None:
    low, high = _ephemeral_range()
    ports = {free_port() for _ in range(20)}
    assert len(ports) > 10  # drawn at random, not one fixed port
    for port in ports:
        if low - 10000 >= 1000:
            assert 10000 <= port < low, (port, low)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_free_port_skips_a_port_in_use() -> None:
    held = []
    try:
        for _ in range(30):
            sock = socket.socket()
            port = free_port()
            sock.bind(("127.0.0.1", port))
            sock.listen()
            held.append(sock)
        in_use = {s.getsockname()[1] for s in held}
        assert free_port() not in in_use
    finally:
        for sock in held:
            sock.close()
