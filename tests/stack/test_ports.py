"""Service ports come from below the ephemeral range, where outgoing connections never land."""

from __future__ import annotations

import json
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


def test_a_port_handed_out_is_not_drawn_again_by_another_process(tmp_path, monkeypatch) -> None:
    """Two harness processes side by side (a soak beside a verify) once drew the same free port, and an app
    failed to start: a port handed out is reserved in a file the machine's harness processes share."""
    import subprocess
    import sys

    from stormproof.harness.stack import ports

    shared = tmp_path / "ports.json"
    monkeypatch.setattr(ports, "_RESERVATIONS", str(shared))
    mine = ports.free_port()
    script = ("import random, sys; from stormproof.harness.stack import ports; "
              f"ports._RESERVATIONS = {str(shared)!r}; "
              # the other process's draws begin with our port: it must skip it
              f"draws = iter([{mine}, {mine}]); "
              "ports._random.randrange = lambda a, b: next(draws, random.randrange(a, b)); "
              "print(ports.free_port())")
    theirs = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert theirs != mine
    assert {str(mine), str(theirs)} <= set(json.loads(shared.read_text()))


def test_an_unreadable_reservation_file_reserves_nothing_and_breaks_nothing(tmp_path, monkeypatch) -> None:
    from stormproof.harness.stack import ports

    shared = tmp_path / "ports.json"
    shared.write_text("not json")
    monkeypatch.setattr(ports, "_RESERVATIONS", str(shared))
    port = ports.free_port()
    assert json.loads(shared.read_text()) == {str(port): json.loads(shared.read_text())[str(port)]}
    monkeypatch.setattr(ports, "_RESERVATIONS", str(tmp_path / "missing-dir" / "ports.json"))
    assert ports.free_port() > 0
