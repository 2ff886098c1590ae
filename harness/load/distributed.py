"""Locust master/worker mode: each worker's history goes to the master, on the master's clock.

Over Locust's own channel (its custom messages), nothing copied by hand:

1. **Clock offsets.** When the test starts, the master pings every worker
   ``PINGS`` times (``stormproof_clock_ping`` with the master's monotonic
   time t0; the worker answers ``stormproof_clock_pong`` with its own
   monotonic time tw; the master reads t1 on receipt). For each worker the
   ping with the shortest round trip gives ``offset = tw - (t0 + t1) / 2``
   (the worker's clock minus the master's, to within half that round trip,
   the NTP estimate), recorded with its uncertainty.
2. **Histories.** When the test is stopping, the master asks every worker
   to stop (``stormproof_stop``; a headless master's ``quit`` would not wait
   for them) and waits for their histories: each worker stops its users
   (Locust's public ``runner.stop()``, which fires ``test_stop``) and sends
   its history file in chunks (``stormproof_history``), with its time origin. The master shifts
   every operation onto its own timeline (``time_ns + origin_w - offset -
   origin_m``) and writes ``<history_dir>/worker-<n>.jsonl``, plus
   ``clock-offsets.json``; ``stormproof check`` then judges the one history.

Loaded by the locustfiles (``import stormproof.harness.load.distributed``); it only
acts when Locust runs as a master or a worker.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ClockSample", "best_offset", "shift_lines", "PING", "PONG", "HISTORY", "STOP"]

PING, PONG, HISTORY = "stormproof_clock_ping", "stormproof_clock_pong", "stormproof_history"
#: Master -> workers when the test is stopping: stop your users now and send your history.
STOP = "stormproof_stop"
#: How long the stopping master waits for every worker's history.
COLLECT_TIMEOUT_S = 60.0
#: Pings per worker at test start; the one with the shortest round trip wins.
PINGS = 8
#: History lines per message (each message is one zmq frame).
CHUNK = 2000


@dataclass(frozen=True)
class ClockSample:
    """One ping: master send time t0, worker time tw, master receive time t1 (ns)."""

    t0: int
    tw: int
    t1: int

    @property
    def rtt(self) -> int:
        return self.t1 - self.t0

    @property
    def offset(self) -> int:
        """Worker clock minus master clock, assuming a symmetric path."""
        return self.tw - (self.t0 + self.t1) // 2


def best_offset(samples: list[ClockSample]) -> tuple[int, int]:
    """(offset, uncertainty) in ns from the sample with the shortest round trip."""
    best = min(samples, key=lambda s: s.rtt)
    return best.offset, best.rtt // 2


def shift_lines(lines: list[str], shift_ns: int) -> list[str]:
    """History JSON lines with ``time_ns`` moved by ``shift_ns`` (everything else as it was)."""
    out = []
    for line in lines:
        if not line.strip():
            continue
        op = json.loads(line)
        op["time_ns"] = int(op.get("time_ns", 0)) + shift_ns
        out.append(json.dumps(op, separators=(",", ":")))
    return out


# -- Locust wiring (only when locust is importable and running distributed) ----------------------
class _Master:
    def __init__(self, environment: Any, history_dir: str, origin_ns: int) -> None:
        self.environment = environment
        self.history_dir = Path(history_dir)
        self.origin_ns = origin_ns
        self.samples: dict[str, list[ClockSample]] = {}
        self.pending: dict[str, float] = {}  # ping id -> t0
        self.lines: dict[str, list[str]] = {}
        self.written: dict[str, dict[str, Any]] = {}

    def ping_all(self) -> None:
        import gevent

        for number in range(PINGS):
            t0 = time.monotonic_ns()
            self.environment.runner.send_message(PING, {"t0": t0, "n": number})
            gevent.sleep(0.05)

    def on_pong(self, environment: Any, msg: Any, **_: Any) -> None:
        t1 = time.monotonic_ns()
        sample = ClockSample(int(msg.data["t0"]), int(msg.data["tw"]), t1)
        self.samples.setdefault(msg.node_id, []).append(sample)

    def collect(self, **_: Any) -> None:
        """On ``test_stopping``: have every worker stop and send its history; wait for them all."""
        import gevent

        runner = self.environment.runner
        expected = {client.id for client in runner.clients.all}
        runner.send_message(STOP, {})
        deadline = time.monotonic() + COLLECT_TIMEOUT_S
        while not expected <= set(self.written) and time.monotonic() < deadline:
            gevent.sleep(0.05)
        missing = expected - set(self.written)
        if missing:
            import logging

            logging.getLogger(__name__).error("no history from worker(s) %s after %.0fs", sorted(missing),
                                              COLLECT_TIMEOUT_S)

    def on_history(self, environment: Any, msg: Any, **_: Any) -> None:
        node = msg.node_id
        if node in self.written:
            return  # already have this worker's history of this test
        self.lines.setdefault(node, []).extend(msg.data.get("lines") or [])
        if msg.data.get("last"):
            self._write(node, msg.data)

    def _write(self, node: str, last: dict[str, Any]) -> None:
        samples = self.samples.get(node)
        offset, uncertainty = best_offset(samples) if samples else (0, -1)
        shift = int(last["origin_ns"]) - offset - self.origin_ns
        lines = self.lines.pop(node, [])
        entry: dict[str, Any] = {"ops": len(lines), "offset_ns": offset, "uncertainty_ns": uncertainty,
                                 "shift_ns": shift, "pings": len(samples or []), "host": last.get("host")}
        same_dir = (last.get("host") == socket.gethostname()
                    and last.get("history_dir") == str(self.history_dir.resolve()))
        if same_dir:  # `locust --processes N`: the worker's own file is already here, on this clock
            entry["file"] = last.get("file")
        else:
            self.history_dir.mkdir(parents=True, exist_ok=True)
            path = self.history_dir / f"worker-{len(self.written) + 1}.jsonl"
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in shift_lines(lines, shift)))
            os.replace(tmp, path)
            entry["file"] = path.name
        self.written[node] = entry
        (self.history_dir / "clock-offsets.json").write_text(json.dumps(self.written, indent=1) + "\n")


class _Worker:
    def __init__(self, environment: Any, history_dir: str, origin_ns: int) -> None:
        self.environment = environment
        self.history_dir = history_dir
        self.origin_ns = origin_ns
        self.sent = False

    def on_ping(self, environment: Any, msg: Any, **_: Any) -> None:
        self.environment.runner.send_message(PONG, {"t0": msg.data["t0"], "tw": time.monotonic_ns()})

    def on_stop(self, environment: Any, msg: Any, **_: Any) -> None:
        self.environment.runner.stop()  # fires test_stop -> send_history (once)
        self.send_history()

    def on_test_start(self, **_: Any) -> None:
        self.sent = False

    def send_history(self, **_: Any) -> None:
        if self.sent:
            return
        self.sent = True
        from . import users

        recorder = users._recorder if users._recorder_pid == os.getpid() else None
        if recorder is not None:
            recorder.flush()
        path = Path(recorder.path) if recorder is not None else Path(self.history_dir) / f"load-{os.getpid()}.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        runner = self.environment.runner
        for start in range(0, len(lines), CHUNK):
            runner.send_message(HISTORY, {"lines": lines[start:start + CHUNK]})
        runner.send_message(HISTORY, {
            "lines": [], "last": True, "origin_ns": self.origin_ns, "count": len(lines), "host": socket.gethostname(),
            "history_dir": str(Path(self.history_dir).resolve()), "file": path.name,
        })


def install() -> None:
    """Register the listeners (idempotent); called on import."""
    from locust import events
    from locust.runners import MasterRunner, WorkerRunner

    if getattr(install, "done", False):
        return
    install.done = True  # type: ignore[attr-defined]

    @events.init.add_listener
    def _on_init(environment: Any, **_: Any) -> None:
        from .users import CONFIG

        runner = environment.runner
        if isinstance(runner, MasterRunner):
            master = _Master(environment, CONFIG.history_dir, CONFIG.origin_ns)
            runner.register_message(PONG, master.on_pong)
            runner.register_message(HISTORY, master.on_history)
            environment.events.test_start.add_listener(lambda **kw: environment.runner.greenlet.spawn(master.ping_all))
            environment.events.test_stopping.add_listener(master.collect)
        elif isinstance(runner, WorkerRunner):
            worker = _Worker(environment, CONFIG.history_dir, CONFIG.origin_ns)
            runner.register_message(PING, worker.on_ping)
            runner.register_message(STOP, worker.on_stop)
            environment.events.test_start.add_listener(worker.on_test_start)
            environment.events.test_stop.add_listener(worker.send_history)


if "locust" in sys.modules:  # loaded by a locustfile; never import locust (and gevent's patches) otherwise
    install()
